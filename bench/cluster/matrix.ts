/**
 * Runs bench:cluster for every method x node count, one run after another,
 * each in its own process, and writes each result to
 * `<out-dir>/<method>-n<N>[-loss<P>].json` (a failed run writes
 * `{"failed": true, ...}` with its exit code and the end of its stderr).
 *
 *   node --import tsx bench/cluster/matrix.ts --nodes 2,4,8,16 --methods torrent,multicast,http \
 *     --rate 50mbit --image-mb 64 [--loss 1%] [--out-dir docs/bench] [--quiet-wait 600] [-- extra bench:cluster flags]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { machineCpuTicks } from './procs.js';

interface Flags {
  nodes: string;
  methods: string;
  rate: string;
  imageMb: string;
  loss?: string;
  outDir: string;
  quietWait: string;
}

/** Waits (up to `maxSeconds`) until the CPUs are under 20% busy over two seconds: other work on the machine skews times. */
async function waitQuiet(maxSeconds: number): Promise<number> {
  const until = Date.now() + maxSeconds * 1000;
  for (;;) {
    const a = machineCpuTicks();
    await new Promise((r) => setTimeout(r, 2000));
    const b = machineCpuTicks();
    const busy = (b.busy - a.busy) / Math.max(1, b.total - a.total);
    if (busy < 0.2 || Date.now() >= until) return busy;
    process.stderr.write(`machine ${Math.round(busy * 100)}% busy; waiting for it to settle\n`);
  }
}

function runOne(args: string[], out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(PACKAGE_ROOT, 'bench/cluster.ts'), ...args, '--out', out, '--json'], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
      process.stderr.write(b);
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function main(f: Flags, extra: string[]): Promise<void> {
  fs.mkdirSync(f.outDir, { recursive: true });
  const nodes = f.nodes.split(',').map(Number);
  const methods = f.methods.split(',');
  const lossTag = f.loss ? `-loss${f.loss.replace('%', 'pct')}` : '';
  for (const n of nodes) {
    for (const m of methods) {
      const out = path.resolve(f.outDir, `${m}-n${n}${lossTag}.json`);
      const args = ['--nodes', String(n), '--method', m, '--rate', f.rate, '--image-mb', f.imageMb, ...(f.loss ? ['--loss', f.loss] : []), ...extra];
      process.stderr.write(`\n=== bench:cluster ${args.join(' ')}\n`);
      fs.rmSync(out, { force: true });
      const busy = await waitQuiet(Number(f.quietWait));
      if (busy >= 0.2) process.stderr.write(`still ${Math.round(busy * 100)}% busy; running anyway\n`);
      const r = await runOne(args, out);
      if (!fs.existsSync(out)) {
        fs.writeFileSync(out, `${JSON.stringify({ failed: true, method: m, nodeCount: n, args, exitCode: r.code, stderrTail: r.stderr.slice(-1500) }, null, 2)}\n`);
      }
      const res = JSON.parse(fs.readFileSync(out, 'utf8')) as { makespanSeconds?: number; ratio?: number; ok?: boolean };
      process.stderr.write(`=== ${m} N=${n}: makespan ${res.makespanSeconds ?? '-'} s, ratio ${res.ratio ?? '-'}, ok ${res.ok ?? false}\n`);
    }
  }
}

const dash = process.argv.indexOf('--', 2);
const own = dash === -1 ? process.argv.slice(2) : process.argv.slice(2, dash);
const extra = dash === -1 ? [] : process.argv.slice(dash + 1);
const program = new Command('bench-cluster-matrix')
  .option('--nodes <list>', 'node counts', '2,4,8,16')
  .option('--methods <list>', 'methods', 'torrent,multicast,http')
  .option('--rate <rate>', 'link rate', '50mbit')
  .option('--image-mb <m>', 'image MiB', '64')
  .option('--loss <p>', 'packet loss into every host')
  .option('--out-dir <dir>', 'where the JSON results go', path.join(PACKAGE_ROOT, 'docs/bench'))
  .option('--quiet-wait <s>', 'before each run, wait up to this long for the CPUs to be idle', '600');
program.parse(own, { from: 'user' });
main(program.opts<Flags>(), extra).catch((e: Error) => {
  process.stderr.write(`bench-cluster-matrix: ${e.message}\n`);
  process.exitCode = 1;
});
