/**
 * Whole-cluster reinstall: set the selection's boot action to `install`,
 * forget their old install progress, power-cycle them at most K at a time
 * (with a small stagger, so DHCP and TFTP are not stormed), then optionally
 * wait, reading progress from the inventory, until every node is done or
 * failed or the timeout passes. Inventory, power driver, clock and sleep are
 * injected; nothing here reads the real time.
 */
import type { NodeName } from '../../protocol/node.js';
import type { InstallProgress, NodeEvent, NodeRecord, NodeSelector } from '../inventory/types.js';
import type { PowerCycler } from './power.js';
import { type NodeStatusRow, nodeStatus } from './status.js';

/** The part of the Inventory a reinstall uses. */
export interface ReinstallInventory {
  select(sel: NodeSelector): NodeRecord[];
  setBootAction(sel: NodeSelector, action: 'install', why: string): NodeRecord[];
  setInstall(name: NodeName, install: InstallProgress | null): void;
  recordEvent(name: NodeName, kind: string, message: string, data?: Record<string, unknown>): void;
  getNode(name: string): NodeRecord | undefined;
  events(name: NodeName, limit?: number): NodeEvent[];
}

export interface ReinstallDeps {
  inventory: ReinstallInventory;
  power: PowerCycler;
  now: () => Date;
  /** Resolves after `ms` (or at once when `signal` aborts). */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface PowerResult {
  name: NodeName;
  ok: boolean;
  /** One line naming the node, when the power cycle failed. */
  error?: string;
}

export interface StartOptions {
  /** Power cycles in flight at once (default 8). */
  parallel?: number;
  /** Least time between two power cycle starts (default 250 ms). */
  staggerMs?: number;
  onPower?: (r: PowerResult) => void;
}

export interface StartedReinstall {
  nodes: NodeName[];
  power: PowerResult[];
}

/**
 * Runs `driver.cycle` on every node, never more than `parallel` at once and
 * never two starts closer than `staggerMs`. A failure is that node's result;
 * the batch always completes.
 */
export async function powerCycleAll(nodes: NodeRecord[], deps: Pick<ReinstallDeps, 'power' | 'now' | 'sleep'>, opts: StartOptions = {}): Promise<PowerResult[]> {
  const parallel = Math.max(1, Math.floor(opts.parallel ?? 8));
  const stagger = Math.max(0, opts.staggerMs ?? 250);
  const results: PowerResult[] = new Array(nodes.length);
  let next = 0;
  let slot = -Infinity;
  const worker = async (): Promise<void> => {
    while (next < nodes.length) {
      const i = next++;
      const node = nodes[i]!;
      if (stagger > 0) {
        const t = deps.now().getTime();
        slot = Math.max(t, slot + stagger);
        if (slot > t) await deps.sleep(slot - t);
      }
      try {
        await deps.power.cycle(node);
        results[i] = { name: node.name, ok: true };
      } catch (err) {
        results[i] = { name: node.name, ok: false, error: (err as Error).message };
      }
      opts.onPower?.(results[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, nodes.length) }, worker));
  return results;
}

/**
 * Sets boot action `install` on the selection (one transaction; an unknown
 * name changes nothing), clears their install progress, records a
 * `reinstall` event on each, and power-cycles them (skipped by a `manual`
 * driver). Power results are recorded as `power` events.
 */
export async function startReinstall(deps: ReinstallDeps, sel: NodeSelector, opts: StartOptions = {}): Promise<StartedReinstall> {
  const { inventory, power } = deps;
  const selected = inventory.select(sel);
  if (selected.length === 0) return { nodes: [], power: [] };
  const names = selected.map((n) => n.name);
  const nodes = inventory.setBootAction({ names }, 'install', 'reinstall');
  for (const n of nodes) {
    inventory.setInstall(n.name, null);
    inventory.recordEvent(n.name, 'reinstall', `reinstall requested (power ${power.name})`, { power: power.name });
  }
  if (power.manual) return { nodes: names, power: names.map((name) => ({ name, ok: true })) };
  const results = await powerCycleAll(nodes, deps, opts);
  for (const r of results) {
    if (r.ok) inventory.recordEvent(r.name, 'power', `power cycled (${power.name})`, { driver: power.name });
    else inventory.recordEvent(r.name, 'power', `power cycle failed (${power.name}): ${r.error}`, { driver: power.name, error: r.error });
  }
  return { nodes: names, power: results };
}

export type Outcome = 'done' | 'failed' | 'stalled' | 'pending';

export interface NodeOutcome {
  name: NodeName;
  outcome: Outcome;
  /** Why it did not succeed. */
  reason?: string;
  row: NodeStatusRow | null;
}

export interface ReinstallSummary {
  /** Every node done with boot action `os`. */
  ok: boolean;
  nodes: NodeOutcome[];
  counts: Record<Outcome, number>;
  elapsedSeconds: number;
  /** The timeout passed before every node finished. */
  timedOut: boolean;
  /** The wait was cut short (Ctrl-C). */
  interrupted: boolean;
}

export interface WaitOptions {
  timeoutSeconds: number;
  stalledAfterSeconds: number;
  /** Time between inventory reads (default 1000 ms). */
  pollMs?: number;
  /** Nodes already known to have failed, e.g. whose power cycle failed: name -> reason. */
  failed?: Map<string, string>;
  /** Called after every read with every node's row (null: node removed). */
  onTick?: (rows: { name: NodeName; row: NodeStatusRow | null }[], elapsedSeconds: number) => void;
  signal?: AbortSignal;
}

function finalOutcome(row: NodeStatusRow | null, known?: string): { outcome: Outcome; reason?: string } | undefined {
  if (known !== undefined) return { outcome: 'failed', reason: known };
  if (!row) return { outcome: 'failed', reason: 'node removed from the inventory' };
  if (row.installState === 'failed') return { outcome: 'failed', reason: row.reason ?? 'installer reported failed' };
  if (row.installState === 'done' && row.bootAction === 'os') return { outcome: 'done' };
  return undefined;
}

function pct(row: NodeStatusRow): string {
  return row.percent === null ? '' : ` at ${row.percent}%`;
}

/** Why a node that did not finish is stalled (or pending, when the wait was interrupted). */
function unfinishedReason(row: NodeStatusRow, timedOut: boolean): string {
  if (!row.installState) return `no install report (did the node PXE-boot with boot action ${row.bootAction}?)`;
  if (row.installState === 'done') return `install done but boot action is still ${row.bootAction} (setPxeboot.cgi?action=os not called)`;
  if (row.state === 'stalled') return `stalled in ${row.installState}${pct(row)}: no report for ${Math.round(row.secondsSinceReport ?? 0)} s`;
  return timedOut ? `still ${row.installState}${pct(row)} when the timeout passed` : `${row.installState}${pct(row)}`;
}

/**
 * Reads the nodes' progress every `pollMs` until each is final (done with
 * boot action `os`, or failed), `timeoutSeconds` pass, or `signal` aborts.
 * Unfinished nodes end `stalled` (timeout) or `pending` (interrupted), with
 * a reason.
 */
export async function waitForInstalls(deps: Pick<ReinstallDeps, 'inventory' | 'now' | 'sleep'>, names: NodeName[], opts: WaitOptions): Promise<ReinstallSummary> {
  const start = deps.now().getTime();
  const pollMs = Math.max(1, opts.pollMs ?? 1000);
  const elapsed = (): number => (deps.now().getTime() - start) / 1000;
  let rows: { name: NodeName; row: NodeStatusRow | null }[] = [];
  let timedOut = false;
  for (;;) {
    const now = deps.now();
    rows = names.map((name) => {
      const n = deps.inventory.getNode(name);
      return { name, row: n ? nodeStatus(n, deps.inventory.events(name, 1).at(-1), now, opts.stalledAfterSeconds) : null };
    });
    opts.onTick?.(rows, elapsed());
    if (rows.every((r) => finalOutcome(r.row, opts.failed?.get(r.name)))) break;
    if (opts.signal?.aborted) break;
    if (elapsed() >= opts.timeoutSeconds) {
      timedOut = true;
      break;
    }
    await deps.sleep(Math.min(pollMs, Math.max(1, (opts.timeoutSeconds - elapsed()) * 1000)), opts.signal);
  }
  const interrupted = !timedOut && Boolean(opts.signal?.aborted) && !rows.every((r) => finalOutcome(r.row, opts.failed?.get(r.name)));
  const nodes: NodeOutcome[] = rows.map(({ name, row }) => {
    const f = finalOutcome(row, opts.failed?.get(name));
    if (f) return { name, row, ...f };
    return { name, row, outcome: timedOut ? 'stalled' : 'pending', reason: unfinishedReason(row!, timedOut) };
  });
  const counts: Record<Outcome, number> = { done: 0, failed: 0, stalled: 0, pending: 0 };
  for (const n of nodes) counts[n.outcome]++;
  return { ok: counts.done === nodes.length, nodes, counts, elapsedSeconds: Math.round(elapsed() * 10) / 10, timedOut, interrupted };
}
