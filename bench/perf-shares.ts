/**
 * `node --import tsx bench/perf-shares.ts [--data perf.data] [--pids 1,2 | --maps DIR] [--json]`
 *
 * Where the given processes spent their CPU in a `perf record -a` capture
 * (bench/lib/perf-shares.ts has the classes). `--maps DIR` takes the pids of
 * the `perf-<pid>.map` files in DIR (default /tmp): the processes that ran
 * with `--perf-basic-prof`, such as the installers of
 * `bench:cluster --node-flags=--perf-basic-prof`. docs/bench-node-path.md
 * shows the capture.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { perfShares } from './lib/perf-shares.js';

interface Flags {
  data: string;
  pids?: string;
  maps: string;
  json?: boolean;
}

async function main(f: Flags): Promise<void> {
  const pids = new Set(
    f.pids !== undefined
      ? f.pids.split(',').map((p) => Number(p.trim()))
      : fs
          .readdirSync(f.maps)
          .map((n) => /^perf-(\d+)\.map$/.exec(n)?.[1])
          .filter((p): p is string => p !== undefined)
          .map(Number),
  );
  if (pids.size === 0 || [...pids].some((p) => !Number.isInteger(p) || p <= 0)) throw new Error(`no pids: give --pids, or --maps with perf-<pid>.map files (${f.maps} has none)`);
  const { stdout } = await promisify(execFile)('perf', ['script', '-i', f.data, '-F', 'pid,tid,ip,sym,dso'], { maxBuffer: 1 << 30 });
  const r = perfShares(stdout.split('\n'), pids);
  if (f.json) return void process.stdout.write(`${JSON.stringify({ pids: [...pids], ...r }, null, 2)}\n`);
  console.log(`${r.samples} samples of pids ${[...pids].join(', ')}`);
  for (const c of r.classes) console.log(`${c.class.padEnd(38)} ${String(c.share).padStart(5)}%  (${c.samples})`);
}

new Command('perf-shares')
  .option('--data <file>', 'perf record output', 'perf.data')
  .option('--pids <list>', 'comma-separated pids')
  .option('--maps <dir>', 'take the pids of the perf-<pid>.map files here', '/tmp')
  .option('--json', 'print JSON')
  .action((f: Flags) =>
    main(f).catch((e: Error) => {
      console.error(`perf-shares: ${e.message}`);
      process.exit(1);
    }),
  )
  .parse();
