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
      process.stderr.write(`kickswarm: ${e.message}\n`);
      return e.code === 'invalid_input' ? 2 : 1;
    }
    process.stderr.write(`kickswarm: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  } finally {
    close();
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
