/**
 * `kickswarm` process entry: runs one command and maps errors to exit codes:
 * invalid input 2, any other failure 1, with one line on stderr.
 */
import { CommanderError } from 'commander';
import { isKickswarmError } from '../protocol/errors.js';
import { buildProgram } from './cli/program.js';

export async function runCli(argv: string[]): Promise<number> {
  let exitCode = 0;
  const { program, close } = buildProgram({
    out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
    isTTY: Boolean(process.stdout.isTTY),
    setExitCode: (c) => {
      exitCode = c;
    },
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (isKickswarmError(e)) {
      process.stderr.write(`kickswarm: ${oneLine(e.message)}\n`);
      return e.code === 'invalid_input' ? 2 : 1;
    }
    // One line; the stack only on request (KICKSWARM_DEBUG=1), for bug reports.
    const err = e as Error;
    process.stderr.write(`kickswarm: ${oneLine(err?.message ?? String(e))}\n`);
    if (process.env.KICKSWARM_DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  } finally {
    close();
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * Runs the CLI and ends the process with its exit code. The exit is explicit:
 * a command that failed half-way (a server part that could not start) must
 * not keep the process alive on a handle nobody will close. A pipe takes
 * large outputs in several writes, so stdout and stderr are drained first.
 */
export async function main(argv: string[]): Promise<never> {
  const code = await runCli(argv);
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) void main(process.argv.slice(2));
