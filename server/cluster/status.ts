/**
 * What `kickswarm status` and `reinstall --wait` show for a node: one row
 * computed from its inventory record, its latest event and the time. Pure
 * functions: no inventory access, no clock of their own.
 */
import type { BootAction, InstallState } from '../../protocol/node.js';
import type { NodeEvent, NodeRecord } from '../inventory/types.js';

/** Install states in which the node is still working and must keep reporting. */
export const ACTIVE_STATES: readonly InstallState[] = ['profile', 'downloading', 'writing', 'verifying', 'post'];

/** An install state, `stalled` (active but silent too long), or `-` (no install recorded). */
export type StatusState = InstallState | 'stalled' | '-';

export interface NodeStatusRow {
  name: string;
  appliance: string;
  bootAction: BootAction;
  state: StatusState;
  /** The last reported install state, also when `state` is `stalled`; null when none. */
  installState: InstallState | null;
  /** 0..100 (one decimal), 100 once `done`; null when the size is unknown. */
  percent: number | null;
  /** Bytes per second of the last report while active; null otherwise. */
  rate: number | null;
  bytesDone: number | null;
  bytesTotal: number | null;
  bytesFromFrontend: number | null;
  bytesFromPeers: number | null;
  /** Why the install failed (or the node's latest note). */
  reason: string | null;
  startedAt: string | null;
  updatedAt: string | null;
  /** Seconds since the last report; null when none. */
  secondsSinceReport: number | null;
  /** startedAt..updatedAt once finished, startedAt..now while active; null when none. */
  durationSeconds: number | null;
  lastEvent: { at: string; kind: string; message: string } | null;
}

export interface StatusSummary {
  total: number;
  /** Nodes per StatusState (only states that occur). */
  byState: Record<string, number>;
  /** Nodes per boot action (only actions that occur). */
  byBootAction: Record<string, number>;
  active: number;
  done: number;
  failed: number;
  stalled: number;
  /** Nodes with no install recorded. */
  idle: number;
}

export function isActiveState(s: InstallState): boolean {
  return ACTIVE_STATES.includes(s);
}

function seconds(fromIso: string, to: Date): number | null {
  const t = Date.parse(fromIso);
  if (Number.isNaN(t)) return null;
  return Math.max(0, (to.getTime() - t) / 1000);
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * The status row of `node` at `now`. An active install whose last report is
 * older than `stalledAfterSeconds` is `stalled`.
 */
export function nodeStatus(node: NodeRecord, lastEvent: NodeEvent | undefined, now: Date, stalledAfterSeconds: number): NodeStatusRow {
  const ins = node.install;
  const row: NodeStatusRow = {
    name: node.name,
    appliance: node.appliance,
    bootAction: node.bootAction,
    state: '-',
    installState: null,
    percent: null,
    rate: null,
    bytesDone: null,
    bytesTotal: null,
    bytesFromFrontend: null,
    bytesFromPeers: null,
    reason: null,
    startedAt: null,
    updatedAt: null,
    secondsSinceReport: null,
    durationSeconds: null,
    lastEvent: lastEvent ? { at: lastEvent.at, kind: lastEvent.kind, message: lastEvent.message } : null,
  };
  if (!ins) return row;
  const active = isActiveState(ins.state);
  const silent = seconds(ins.updatedAt, now);
  row.installState = ins.state;
  row.state = active && silent !== null && silent > stalledAfterSeconds ? 'stalled' : ins.state;
  row.bytesDone = ins.bytesDone ?? null;
  row.bytesTotal = ins.bytesTotal ?? null;
  row.bytesFromFrontend = ins.bytesFromFrontend ?? null;
  row.bytesFromPeers = ins.bytesFromPeers ?? null;
  row.reason = ins.reason ?? null;
  row.startedAt = ins.startedAt;
  row.updatedAt = ins.updatedAt;
  row.secondsSinceReport = silent === null ? null : round1(silent);
  if (ins.state === 'done') row.percent = 100;
  else if (ins.bytesTotal && ins.bytesTotal > 0) row.percent = round1(Math.min(100, (100 * (ins.bytesDone ?? 0)) / ins.bytesTotal));
  row.rate = row.state === ins.state && active && ins.rate !== undefined ? ins.rate : null;
  const end = active ? now : new Date(ins.updatedAt);
  const dur = Number.isNaN(end.getTime()) ? null : seconds(ins.startedAt, end);
  row.durationSeconds = dur === null ? null : round1(dur);
  return row;
}

/** Counts of a set of rows. */
export function summarize(rows: NodeStatusRow[]): StatusSummary {
  const s: StatusSummary = { total: rows.length, byState: {}, byBootAction: {}, active: 0, done: 0, failed: 0, stalled: 0, idle: 0 };
  for (const r of rows) {
    s.byState[r.state] = (s.byState[r.state] ?? 0) + 1;
    s.byBootAction[r.bootAction] = (s.byBootAction[r.bootAction] ?? 0) + 1;
    if (r.state === '-') s.idle++;
    else if (r.state === 'stalled') s.stalled++;
    else if (r.state === 'done') s.done++;
    else if (r.state === 'failed') s.failed++;
    else s.active++;
  }
  return s;
}

/** Where `nodeStatus` gets its input: the part of the Inventory it reads. */
export interface StatusSource {
  listNodes(): NodeRecord[];
  events(name: NodeRecord['name'], limit?: number): NodeEvent[];
}

/** Rows of every node in inventory order. */
export function clusterStatus(src: StatusSource, now: Date, stalledAfterSeconds: number): NodeStatusRow[] {
  return src.listNodes().map((n) => nodeStatus(n, src.events(n.name, 1).at(-1), now, stalledAfterSeconds));
}
