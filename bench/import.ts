/**
 * Bulk inventory benchmark: `kickswarm node import` of an N-node CSV file into
 * an empty data dir, then the same file again with every node's IP and one
 * attribute changed (an update of every node), then `node export`, each run
 * as a user runs it (the built CLI, bin/kickswarm.js, in its own process).
 *
 *   node --import tsx bench/import.ts --nodes 10000 [--runs 3] [--json]
 *
 * Reports per step the median wall seconds and the median CPU seconds (user +
 * system, from GNU time) of the CLI process, Node.js start-up included, and
 * the same for `node list` on an empty data dir (the fixed cost); checks each
 * outcome (N added; N updated; N + 1 lines exported). Needs `npm run build`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { median, positiveInt, round } from './lib/stats.js';

const CLI = resolve(import.meta.dirname, '../bin/kickswarm.js');

interface Step {
  wall: number;
  cpu: number;
  stdout: string;
}

/** Runs the CLI under GNU time (`/usr/bin/time`, Debian `time`) for its wall and CPU seconds. */
function run(dataDir: string, args: string[]): Promise<Step> {
  return new Promise((res, rej) => {
    const child = spawn('/usr/bin/time', ['-f', 'BENCH-TIME %e %U %S', process.execPath, CLI, '--data-dir', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => {
      const m = /BENCH-TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(stderr);
      if (code !== 0 || !m) rej(new Error(`kickswarm ${args.join(' ')} exited ${code}: ${stderr}`));
      else res({ wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), stdout });
    });
  });
}

function csv(n: number, variant: number): string {
  const lines = ['name,mac,ip,appliance,rack,rank,attr.ipmi.host,attr.note'];
  for (let i = 0; i < n; i++) {
    const rack = Math.floor(i / 40);
    const rank = i % 40;
    const mac = `52:54:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    const ip = `10.${16 + variant}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    lines.push(`compute-${rack}-${rank},${mac},${ip},compute,${rack},${rank},10.200.${Math.floor(i / 250)}.${(i % 250) + 1},v${variant}`);
  }
  return lines.join('\n') + '\n';
}

const program = new Command('bench-import')
  .option('--nodes <n>', 'nodes in the file', (v) => positiveInt('--nodes', v, 60_000), 10_000)
  .option('--runs <r>', 'repetitions (medians reported)', (v) => positiveInt('--runs', v, 20), 3)
  .option('--json', 'print the result as JSON')
  .parse(process.argv.filter((a, i) => i < 2 || a !== '--'));
const o = program.opts<{ nodes: number; runs: number; json?: boolean }>();

const work = mkdtempSync(join(os.tmpdir(), 'kickswarm-bench-import-'));
try {
  const first = join(work, 'nodes.csv');
  const second = join(work, 'nodes-changed.csv');
  writeFileSync(first, csv(o.nodes, 0));
  writeFileSync(second, csv(o.nodes, 1));
  const steps: Record<'add' | 'update' | 'export', Step[]> = { add: [], update: [], export: [] };
  for (let r = 0; r < o.runs; r++) {
    const dir = join(work, `data-${r}`);
    const add = await run(dir, ['node', 'import', first, '--json']);
    if ((JSON.parse(add.stdout) as { added: string[] }).added.length !== o.nodes) throw new Error('not every node was added');
    const update = await run(dir, ['node', 'import', second, '--json']);
    if ((JSON.parse(update.stdout) as { updated: string[] }).updated.length !== o.nodes) throw new Error('not every node was updated');
    const exp = await run(dir, ['node', 'export']);
    if (exp.stdout.trimEnd().split('\n').length !== o.nodes + 1) throw new Error('export is missing nodes');
    steps.add.push(add);
    steps.update.push(update);
    steps.export.push(exp);
    rmSync(dir, { recursive: true, force: true });
  }
  const result = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, { wallSeconds: round(median(v.map((s) => s.wall))), cpuSeconds: round(median(v.map((s) => s.cpu))) }]));
  const baseline = await run(join(work, 'data-empty'), ['node', 'list']);
  const out = { nodes: o.nodes, runs: o.runs, ...result, emptyCommand: { wallSeconds: round(baseline.wall), cpuSeconds: round(baseline.cpu) } };
  if (o.json) console.log(JSON.stringify(out, null, 2));
  else for (const [k, v] of Object.entries(out)) console.log(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
