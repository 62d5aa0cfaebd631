/**
 * Plots bench:cluster results: makespan against the number of nodes for each
 * method, with the lower bounds (F/u for swarm and multicast, N*F/u for
 * HTTP), as a PNG made by gnuplot (Debian: gnuplot-nox).
 *
 *   node --import tsx bench/plot-cluster.ts [--in docs/bench] [--out docs/bench/cluster-makespan.png] [--table]
 *
 * Plots every `*.json` in the input folder that is a loss-free result in which
 * every node finished (failed runs and loss runs are left out of the plot).
 * `--table` also prints every result, loss runs included, as a Markdown table.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { PACKAGE_ROOT } from '../server/datadir.js';

interface Result {
  method: string;
  nodeCount: number;
  lossRate: number;
  ratio: number;
  transferMakespanSeconds: number | null;
  lastStartSeconds: number | null;
  frontendBytesSent: number;
  frontendCopies: number;
  peerBytesSent: number;
  cpu: { frontendSeconds: number; installersSeconds: number; machineBusyShare: number; floorSeconds?: number };
  ok: boolean;
  rate: string;
  imageMb: number;
  fileBytes: number;
  rateBitsPerSec: number;
  makespanSeconds: number;
  lowerBoundSeconds: number;
  nodes: { state: string }[];
}

const METHODS = ['torrent', 'multicast', 'http'] as const;
const COLOURS: Record<string, string> = { torrent: '#1b9e77', multicast: '#7570b3', http: '#d95f02' };

/** Results in which every node finished, loss runs included. */
function load(dir: string): Result[] {
  const out: Result[] = [];
  for (const f of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Partial<Result> & { failed?: boolean };
    if (r.failed || !r.nodes || !r.nodes.every((n) => n.state === 'done')) continue;
    out.push(r as Result);
  }
  return out;
}

const MiB = 2 ** 20;

/** Every result as a Markdown table, by loss, method, then node count. */
function markdownTable(results: Result[]): string {
  const order = (r: Result) => [r.lossRate, METHODS.indexOf(r.method as (typeof METHODS)[number]), r.nodeCount];
  const sorted = [...results].sort((a, b) => {
    const x = order(a);
    const y = order(b);
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
  const head =
    '| method | N | loss | makespan (s) | bound (s) | ratio | transfer only (s) | last start (s) | frontend sent (MiB, copies of F) | peers sent (MiB) | CPU s: frontend / installers | CPU floor (s) | CPUs busy | ok |';
  const rows = sorted.map((r) =>
    [
      r.method,
      r.nodeCount,
      r.lossRate ? `${(r.lossRate * 100).toFixed(1)}%` : '0',
      r.makespanSeconds.toFixed(1),
      r.lowerBoundSeconds.toFixed(1),
      r.ratio.toFixed(2),
      r.transferMakespanSeconds?.toFixed(1) ?? '-',
      r.lastStartSeconds?.toFixed(1) ?? '-',
      `${(r.frontendBytesSent / MiB).toFixed(0)} (${r.frontendCopies.toFixed(2)})`,
      (r.peerBytesSent / MiB).toFixed(0),
      `${r.cpu.frontendSeconds.toFixed(1)} / ${r.cpu.installersSeconds.toFixed(1)}`,
      r.cpu.floorSeconds?.toFixed(1) ?? '-',
      `${Math.round(r.cpu.machineBusyShare * 100)}%`,
      r.ok ? 'yes' : 'NO',
    ].join(' | '),
  );
  return [head, `|${'---|'.repeat(14)}`, ...rows.map((r) => `| ${r} |`)].join('\n');
}

function plot(results: Result[], outFile: string): void {
  if (!results.length) throw new Error('no complete loss-free results to plot');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ksb-plot-'));
  try {
    const series: string[] = [];
    for (const m of METHODS) {
      const rows = results.filter((r) => r.method === m).sort((a, b) => a.nodeCount - b.nodeCount);
      if (!rows.length) continue;
      const file = path.join(work, `${m}.dat`);
      fs.writeFileSync(file, rows.map((r) => `${r.nodeCount} ${r.makespanSeconds} ${r.lowerBoundSeconds} ${r.cpu.floorSeconds ?? '?'}`).join('\n') + '\n');
      series.push(`'${file}' using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '${COLOURS[m]}' title '${m} (measured)'`);
      // Where the simulated nodes' CPU (shared on this machine) bounds the swarm, show it.
      if (m === 'torrent' && rows.some((r) => r.cpu.floorSeconds !== undefined)) {
        series.push(`'${file}' using 1:4 with linespoints dt 3 lw 1.5 pt 6 ps 1 lc rgb '${COLOURS[m]}' title 'torrent: CPU floor of this machine'`);
      }
      if (m === 'http') series.push(`'${file}' using 1:3 with lines dt 2 lw 1.5 lc rgb '${COLOURS[m]}' title 'HTTP bound N·F/u'`);
    }
    // Swarm (Kumar-Ross with equal links) and multicast share one bound, F/u; the targets are multiples of it.
    const flat = results.find((r) => r.method !== 'http');
    if (flat) {
      const f = flat.lowerBoundSeconds;
      series.push(`${f} with lines dt 2 lw 1.5 lc rgb '#444444' title 'swarm (Kumar-Ross) and multicast bound F/u'`);
      series.push(`${1.5 * f} with lines dt 3 lw 1 lc rgb '${COLOURS.torrent}' title 'swarm target 1.5 x bound'`);
      series.push(`${1.3 * f} with lines dt 3 lw 1 lc rgb '${COLOURS.multicast}' title 'multicast target 1.3 x bound'`);
    }
    const any = results[0]!;
    const ns = [...new Set(results.map((r) => r.nodeCount))].sort((a, b) => a - b);
    const title = `kickswarm: whole-cluster reinstall, ${any.imageMb} MiB image (F = ${(any.fileBytes / 2 ** 20).toFixed(1)} MiB), every link ${any.rate}`;
    const script = [
      `set terminal pngcairo size 1000,640 font 'DejaVu Sans,11'`,
      `set output '${outFile}'`,
      `set title "${title}"`,
      `set xlabel 'nodes (N)'`,
      `set ylabel 'makespan: launch to last node done (s)'`,
      `set logscale xy 2`,
      `set xtics (${ns.map((n) => `"${n}" ${n}`).join(', ')})`,
      `set xrange [${ns[0]! / 1.25}:${ns[ns.length - 1]! * 1.25}]`,
      `set format y '%g'`,
      `set grid`,
      `set key top left box opaque`,
      `plot ${series.join(', \\\n     ')}`,
      '',
    ].join('\n');
    execFileSync('gnuplot', [], { input: script, stdio: ['pipe', 'inherit', 'inherit'] });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const program = new Command('plot-cluster')
  .option('--in <dir>', 'folder of bench:cluster JSON results', path.join(PACKAGE_ROOT, 'docs/bench'))
  .option('--out <png>', 'PNG to write', path.join(PACKAGE_ROOT, 'docs/bench/cluster-makespan.png'))
  .option('--table', 'also print all results as a Markdown table');
program.parse(
  process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--')),
  { from: 'user' },
);
const o = program.opts<{ in: string; out: string; table?: boolean }>();
try {
  const results = load(o.in);
  if (o.table) process.stdout.write(`${markdownTable(results)}\n`);
  plot(
    results.filter((r) => r.lossRate === 0),
    path.resolve(o.out),
  );
  process.stderr.write(`wrote ${o.out}\n`);
} catch (e) {
  process.stderr.write(`plot-cluster: ${(e as Error).message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (is gnuplot installed? Debian: apt-get install gnuplot-nox)' : ''}\n`);
  process.exitCode = 1;
}
