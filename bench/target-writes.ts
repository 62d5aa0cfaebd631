/**
 * What writing an install target costs a node: M MiB of random data written
 * in 1 MiB writes, three at a time (as the installer's writers do), then
 * fsynced, through protocol/target-file.ts with direct writes turned off (the
 * page cache) and on (O_DIRECT). CPU seconds of this process and wall
 * seconds, the two ways alternating; medians printed.
 *
 *   npm run bench:target-writes -- [--mb M] [--runs R] [--dir D] [--json]
 *
 * The target is a fresh file in D (default: the OS's temp dir), removed after
 * each run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { openTarget } from '../protocol/target-file.js';

const MiB = 1 << 20;
const WRITERS = 3;
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (n: number) => Math.round(n * 1000) / 1000;

interface Run {
  cpuSeconds: number;
  wallSeconds: number;
  directShare: number;
}

async function writeOnce(file: string, mb: number, direct: boolean, data: Buffer[]): Promise<Run> {
  const t0 = performance.now();
  const c0 = cpuNow();
  const target = await openTarget(file, mb * MiB, { direct });
  try {
    let next = 0;
    const writer = async (buf: Buffer) => {
      for (let i = next++; i < mb; i = next++) await target.write(buf, i * MiB);
    };
    await Promise.all(data.map(writer));
    await target.sync();
  } finally {
    await target.close();
  }
  const s = target.stats;
  return { cpuSeconds: cpuNow() - c0, wallSeconds: (performance.now() - t0) / 1000, directShare: s.directBytes / Math.max(1, s.directBytes + s.bufferedBytes) };
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--mb <m>', 'MiB written per run', '512')
    .option('--runs <r>', 'runs of each way', '5')
    .option('--dir <dir>', 'where the target file goes', os.tmpdir())
    .option('--json', 'print JSON')
    .parse(
      process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--')),
      { from: 'user' },
    )
    .opts<{ mb: string; runs: string; dir: string; json?: boolean }>();
  const mb = Number(o.mb);
  const runs = Number(o.runs);
  if (!Number.isInteger(mb) || mb < 1 || !Number.isInteger(runs) || runs < 1) throw new Error('--mb and --runs take whole numbers from 1');
  const file = path.join(fs.mkdtempSync(path.join(o.dir, 'ks-target-writes-')), 'target');
  const data = Array.from({ length: WRITERS }, () => crypto.randomBytes(MiB));
  const ways = { pageCache: [] as Run[], direct: [] as Run[] };
  try {
    for (let r = 0; r < runs; r++) {
      for (const way of ['pageCache', 'direct'] as const) {
        ways[way].push(await writeOnce(file, mb, way === 'direct', data));
        fs.rmSync(file, { force: true });
      }
    }
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  const summary = Object.fromEntries(
    Object.entries(ways).map(([way, rs]) => [
      way,
      {
        cpuSeconds: rs.map((r) => round(r.cpuSeconds)),
        medianCpuSeconds: round(median(rs.map((r) => r.cpuSeconds))),
        medianWallSeconds: round(median(rs.map((r) => r.wallSeconds))),
        directShare: round(median(rs.map((r) => r.directShare))),
      },
    ]),
  );
  if (o.json) return void process.stdout.write(`${JSON.stringify({ mb, runs, dir: o.dir, ...summary }, null, 2)}\n`);
  for (const [way, s] of Object.entries(summary))
    console.log(`${way.padEnd(10)} CPU-s ${s.cpuSeconds.join(' / ')} (median ${s.medianCpuSeconds}), wall median ${s.medianWallSeconds} s, direct share ${s.directShare}`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench-target-writes: ${err.message}\n`);
  process.exit(1);
});
