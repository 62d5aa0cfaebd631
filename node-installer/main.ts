/**
 * `kickswarm-install` process entry: runs one command and maps errors to exit
 * codes: invalid input 2, any other failure 1, with one line on stderr.
 */
import { CommanderError } from 'commander';
import { isKickswarmError } from '../protocol/errors.js';
import { buildProgram } from './cli/program.js';

export async function runInstallCli(argv: string[]): Promise<number> {
  const program = buildProgram({
    out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
    err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
    interrupted: () =>
      new Promise((resolve) => {
        const on = (sig: string) => () => {
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          resolve(sig);
        };
        const onInt = on('SIGINT');
        const onTerm = on('SIGTERM');
        process.once('SIGINT', onInt);
        process.once('SIGTERM', onTerm);
      }),
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    const msg = isKickswarmError(e) ? e.message : ((e as Error)?.message ?? String(e));
    process.stderr.write(`kickswarm-install: ${msg.replace(/[\r\n]+/g, ' ')}\n`);
    return isKickswarmError(e) && e.code === 'invalid_input' ? 2 : 1;
  }
}

runInstallCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  () => {
    process.exitCode = 1;
  },
);
