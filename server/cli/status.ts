/**
 * `kickswarm status [--json] [--watch] [--interval S] [--stalled-after S]`:
 * every node's boot action, install state, progress, rate, bytes from the
 * frontend and from peers, duration and last event, read straight from the
 * data dir's inventory (with or without a running server). An active install
 * with no report for `--stalled-after` seconds (config `stalledAfterSeconds`)
 * shows as `stalled`. `--watch` redraws every interval on a terminal and
 * prints changed rows as plain lines (JSON lines with `--json`) otherwise,
 * until Ctrl-C.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { type NodeStatusRow, type StatusSummary, clusterStatus, summarize } from '../cluster/status.js';
import type { CliContext, CommandModule } from './context.js';
import { humanBytes, humanSeconds, json, table } from './format.js';

/** A positive number of seconds from an option value. */
export function parseSeconds(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0)) throw new InvalidInputError(`${flag} must be a positive number of seconds, not ${JSON.stringify(v)}`);
    return n;
  };
}

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

function age(at: string, now: Date): string {
  const t = Date.parse(at);
  return Number.isNaN(t) ? at : `${humanSeconds(Math.max(0, (now.getTime() - t) / 1000))} ago`;
}

function bytes(n: number | null): string {
  return n === null ? '-' : humanBytes(n);
}

/** The status table: one line per node. */
export function formatStatusTable(rows: NodeStatusRow[], now: Date): string {
  return table(
    ['NAME', 'APPLIANCE', 'BOOT', 'STATE', 'PROGRESS', 'RATE', 'FRONTEND', 'PEERS', 'DURATION', 'LAST EVENT'],
    rows.map((r) => [
      r.name,
      r.appliance,
      r.bootAction,
      r.state,
      r.percent === null ? '-' : `${r.percent.toFixed(1)}%`,
      r.rate === null ? '-' : `${humanBytes(r.rate)}/s`,
      bytes(r.bytesFromFrontend),
      bytes(r.bytesFromPeers),
      r.durationSeconds === null ? '-' : humanSeconds(r.durationSeconds),
      r.lastEvent ? `${age(r.lastEvent.at, now)}: ${cut(r.lastEvent.message, 70)}` : '-',
    ]),
  );
}

/** `10 nodes: 3 done, 1 failed, 1 stalled, 4 installing, 1 idle`. */
export function formatSummary(s: StatusSummary): string {
  const parts = [`${s.done} done`, `${s.failed} failed`, `${s.stalled} stalled`, `${s.active} installing`, `${s.idle} idle`];
  const boot = Object.entries(s.byBootAction)
    .map(([a, n]) => `${n} ${a}`)
    .join(', ');
  return `${s.total} node${s.total === 1 ? '' : 's'}: ${parts.join(', ')}${boot ? ` (boot action: ${boot})` : ''}`;
}

/** One plain line for a row, as `--watch` prints changes when not on a terminal. */
export function statusLine(r: NodeStatusRow, now: Date): string {
  const bits = [now.toISOString().replace(/\.\d+Z$/, 'Z'), r.name, `boot=${r.bootAction}`, `state=${r.state}`];
  if (r.percent !== null) bits.push(`${r.percent.toFixed(1)}%`);
  if (r.rate !== null) bits.push(`${humanBytes(r.rate)}/s`);
  if (r.state === 'failed' && r.reason) bits.push(`reason=${JSON.stringify(r.reason)}`);
  if (r.lastEvent) bits.push(`last=${JSON.stringify(cut(r.lastEvent.message, 120))}`);
  return bits.join(' ');
}

/** What counts as a change for `--watch` line output: state, boot action, every 5 %, a new event. */
function changeKey(r: NodeStatusRow): string {
  const step = r.percent === null ? '' : String(Math.floor(r.percent / 5));
  return [r.bootAction, r.state, step, r.reason ?? '', r.lastEvent?.at ?? '', r.lastEvent?.message ?? ''].join('|');
}

export interface StatusOptions {
  json?: boolean;
  watch?: boolean;
  interval: number;
  stalledAfter?: number;
}

export interface StatusCommandDeps {
  now?: () => Date;
  /** Resolves after `ms`, or rejects/resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Runs `status` once or, with `watch`, until `signal` aborts. */
export async function runStatus(ctx: CliContext, o: StatusOptions, deps: StatusCommandDeps = {}, signal?: AbortSignal): Promise<void> {
  const now = deps.now ?? (() => new Date());
  const wait = deps.sleep ?? ((ms: number, s: AbortSignal) => sleep(ms, undefined, { signal: s }).catch(() => undefined));
  const stalledAfter = o.stalledAfter ?? ctx.config().stalledAfterSeconds;
  const read = (): { rows: NodeStatusRow[]; at: Date } => {
    const at = now();
    return { rows: clusterStatus(ctx.inventory(), at, stalledAfter), at };
  };
  if (!o.watch) {
    const { rows, at } = read();
    if (o.json) return ctx.out(json({ at: at.toISOString(), stalledAfterSeconds: stalledAfter, nodes: rows, summary: summarize(rows) }));
    if (rows.length === 0) return ctx.out('no nodes (add one with `kickswarm node add NAME --mac MAC --ip IP`)');
    return ctx.out(`${formatStatusTable(rows, at)}\n\n${formatSummary(summarize(rows))}`);
  }
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  signal?.addEventListener('abort', stop, { once: true });
  const seen = new Map<string, string>();
  try {
    while (!ac.signal.aborted) {
      const { rows, at } = read();
      if (ctx.isTTY && !o.json) {
        const head = `kickswarm status  ${at.toISOString().replace(/\.\d+Z$/, 'Z')}  every ${o.interval}s, stalled after ${stalledAfter}s (Ctrl-C to stop)`;
        const body = rows.length ? formatStatusTable(rows, at) : 'no nodes';
        ctx.out(`\x1b[2J\x1b[H${head}\n\n${body}\n\n${formatSummary(summarize(rows))}`);
      } else {
        for (const r of rows) {
          const k = changeKey(r);
          if (seen.get(r.name) === k) continue;
          seen.set(r.name, k);
          ctx.out(o.json ? JSON.stringify({ at: at.toISOString(), ...r }) : statusLine(r, at));
        }
      }
      await wait(o.interval * 1000, ac.signal);
    }
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

/** Builds the `status` module; tests inject the clock and sleep. */
export function statusCommandModule(deps: StatusCommandDeps = {}): CommandModule {
  return (program: Command, ctx: CliContext) => {
    program
      .command('status')
      .description('every node: boot action, install state, progress, last event, duration')
      .option('--json', 'JSON output ({at, stalledAfterSeconds, nodes, summary}; JSON lines with --watch)')
      .option('--watch', 'keep watching until Ctrl-C')
      .option('--interval <seconds>', 'seconds between reads with --watch', parseSeconds('--interval'), 2)
      .option('--stalled-after <seconds>', 'call an install stalled after this long without a report (default: config stalledAfterSeconds)', parseSeconds('--stalled-after'))
      .action(async (o: StatusOptions) => {
        const ac = new AbortController();
        const onSignal = (): void => ac.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          await runStatus(ctx, o, deps, ac.signal);
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      });
  };
}

export const registerStatusCommand: CommandModule = statusCommandModule();
