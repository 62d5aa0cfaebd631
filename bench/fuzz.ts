/**
 * The fuzz suite: random TFTP datagrams, HTTP requests and BitTorrent wire
 * messages against a real `kickswarm serve` and a node proxy, for as long as
 * asked. Prints inputs, answers, server errors (5xx), crashes, peak RSS and
 * open file descriptors; exits 1 on a crash, a server error, or a server
 * that no longer serves.
 *
 *   npm run fuzz -- --seconds 60 [--seed 42] [--no-proxy] [--json]
 */
import { Command } from 'commander';
import { runFuzz } from './lib/fuzz/run.js';

const program = new Command('fuzz')
  .option('--seconds <n>', 'how long to fuzz, all targets together', '60')
  .option('--seed <n>', 'PRNG seed (a run replays from it)', String(Date.now() % 2 ** 31))
  .option('--no-proxy', 'leave the node proxy out')
  .option('--json', 'print the report as JSON')
  .action(async (f: { seconds: string; seed: string; proxy: boolean; json?: boolean }) => {
    const seconds = Number(f.seconds);
    const seed = Number(f.seed);
    if (!(seconds > 0) || !Number.isInteger(seed)) {
      process.stderr.write('fuzz: --seconds must be a positive number and --seed a whole number\n');
      process.exit(2);
    }
    const r = await runFuzz({ seconds, seed, proxy: f.proxy, log: (l) => process.stderr.write(`fuzz: ${l}\n`) });
    if (f.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else {
      process.stdout.write(`seed ${r.seed}, ${r.seconds} s, ${r.inputs} inputs, ${r.serverErrors} server errors (5xx), still serves: ${r.stillServes} ${JSON.stringify(r.checks)}\n`);
      for (const t of r.targets) {
        process.stdout.write(`  ${t.target.padEnd(12)} ${String(t.inputs).padStart(8)} inputs  5xx ${t.serverErrors}  answers ${JSON.stringify(t.answers)}\n`);
        for (const s of t.samples) process.stdout.write(`      ${s}\n`);
      }
      for (const [name, p] of Object.entries(r.processes)) {
        process.stdout.write(
          `  ${name.padEnd(12)} crashed ${p.crashed}${p.exit ? ` (${p.exit})` : ''}  peak RSS ${p.peakRssMb} MiB  fds baseline ${p.baselineFds} peak ${p.peakFds} end ${p.endFds}\n`,
        );
      }
    }
    const crashed = Object.values(r.processes).some((p) => p.crashed);
    process.exit(crashed || r.serverErrors > 0 || !r.stillServes ? 1 : 0);
  });
program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`fuzz: ${e.message}\n`);
  process.exit(1);
});
