/**
 * Live views of a reinstall: bars on a terminal (one per node plus one
 * overall, via cli-progress), plain lines otherwise (every state change, and a
 * summary line every few seconds). Both consume the rows `waitForInstalls`
 * reads each tick.
 */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import type { NodeName } from '../../protocol/node.js';
import { humanBytes, humanSeconds } from '../units.js';
import type { NodeStatusRow } from './status.js';

/** cli-progress, loaded when a bar is first drawn. */
const loadCliProgress = (): typeof CliProgress => createRequire(import.meta.url)('cli-progress') as typeof CliProgress;

export type TickRows = { name: NodeName; row: NodeStatusRow | null }[];

export interface ProgressView {
  update(rows: TickRows, elapsedSeconds: number): void;
  /** Idempotent. */
  stop(): void;
}

/** Progress of one node in 0..100 for the overall bar: finished nodes count as 100. */
function nodeProgress(row: NodeStatusRow | null): number {
  if (!row) return 100;
  if (row.installState === 'done' || row.installState === 'failed') return 100;
  return row.percent ?? 0;
}

function stateLabel(row: NodeStatusRow | null): string {
  if (!row) return 'removed';
  if (row.state === 'done' && row.bootAction !== 'os') return 'done (boot not flipped)';
  return row.state === '-' ? 'waiting' : row.state;
}

function rateLabel(row: NodeStatusRow | null): string {
  return row?.rate ? `${humanBytes(row.rate)}/s` : '';
}

/** Counts such as `3 done, 1 failed, 2 writing, 4 waiting`. */
export function countsLine(rows: TickRows): string {
  const by = new Map<string, number>();
  for (const r of rows) by.set(stateLabel(r.row), (by.get(stateLabel(r.row)) ?? 0) + 1);
  const order = ['done', 'failed', 'stalled', 'post', 'verifying', 'writing', 'downloading', 'profile', 'waiting'];
  const rank = (s: string): number => (order.includes(s) ? order.indexOf(s) : order.length);
  return [...by.entries()]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
}

export interface BarViewOptions {
  stream?: NodeJS.WritableStream;
  /** Above this many nodes only the overall bar is drawn (default 40). */
  maxNodeBars?: number;
}

/** cli-progress bars; a failed node's reason is printed above the bars once. */
export function barView(opts: BarViewOptions = {}): ProgressView {
  const multi = new (loadCliProgress().MultiBar)(
    {
      format: '{label} |{bar}| {percentage}% {state} {rate}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      stream: opts.stream ?? process.stdout,
      fps: 5,
    },
    loadCliProgress().Presets.shades_classic,
  );
  const maxBars = opts.maxNodeBars ?? 40;
  const bars = new Map<string, CliProgress.SingleBar>();
  let overall: CliProgress.SingleBar | undefined;
  let width = 7;
  const told = new Set<string>();
  let stopped = false;
  return {
    update(rows, elapsed) {
      if (stopped) return;
      if (!overall) {
        width = Math.max(7, ...rows.map((r) => r.name.length));
        if (rows.length <= maxBars) for (const r of rows) bars.set(r.name, multi.create(100, 0, { label: r.name.padEnd(width), state: '', rate: '' }));
        overall = multi.create(100 * Math.max(1, rows.length), 0, { label: 'overall'.padEnd(width), state: '', rate: '' });
      }
      let sum = 0;
      for (const r of rows) {
        const p = nodeProgress(r.row);
        sum += p;
        bars.get(r.name)?.update(Math.round(p), { label: r.name.padEnd(width), state: stateLabel(r.row), rate: rateLabel(r.row) });
        if (r.row?.installState === 'failed' && !told.has(r.name)) {
          told.add(r.name);
          multi.log(`${r.name}: failed: ${r.row.reason ?? 'no reason given'}\n`);
        }
      }
      overall.update(Math.round(sum), { label: 'overall'.padEnd(width), state: countsLine(rows), rate: humanSeconds(elapsed) });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (multi.isActive) multi.update();
      multi.stop();
    },
  };
}

export interface LineViewOptions {
  out: (line: string) => void;
  /** Seconds between summary lines (default 5). */
  everySeconds?: number;
}

function describe(row: NodeStatusRow | null): string {
  if (!row) return 'removed from the inventory';
  const parts = [stateLabel(row)];
  if (row.percent !== null && row.state !== 'done') parts.push(`${row.percent}%`);
  if (row.state === 'failed' && row.reason) parts.push(`(${row.reason})`);
  return parts.join(' ');
}

/** Plain lines: `[+12s] compute-0-1: writing 45%` on each change; a summary line every `everySeconds`. */
export function lineView(opts: LineViewOptions): ProgressView {
  const every = opts.everySeconds ?? 5;
  const last = new Map<string, string>();
  let nextSummary = every;
  return {
    update(rows, elapsed) {
      const t = `[+${humanSeconds(elapsed)}]`;
      for (const r of rows) {
        const key = r.row ? `${stateLabel(r.row)}|${r.row.reason ?? ''}` : 'removed';
        if (last.get(r.name) === key) continue;
        const first = !last.has(r.name);
        last.set(r.name, key);
        if (first && r.row && r.row.state === '-') continue;
        opts.out(`${t} ${r.name}: ${describe(r.row)}`);
      }
      if (elapsed >= nextSummary) {
        nextSummary = (Math.floor(elapsed / every) + 1) * every;
        const active = rows.filter((r) => r.row && r.row.percent !== null && r.row.rate !== null);
        const rate = active.reduce((s, r) => s + (r.row!.rate ?? 0), 0);
        const avg = active.length ? active.reduce((s, r) => s + (r.row!.percent ?? 0), 0) / active.length : undefined;
        const extra = avg === undefined ? '' : `; installing at ${avg.toFixed(0)}% on average, ${humanBytes(rate)}/s in all`;
        opts.out(`${t} ${countsLine(rows)}${extra}`);
      }
    },
    stop() {},
  };
}
