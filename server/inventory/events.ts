/**
 * Each node's event history (the `events` table) for the Inventory: writes,
 * direct or queued, and reads.
 *
 * Direct (the default, and what the CLI uses): `record()` writes the event in
 * a transaction of its own before it returns and throws what SQLite throws
 * (e.g. for a node that does not exist).
 *
 * Queued (`kickswarm serve`, which records one event per kickstart, PXE config
 * and progress report): `record()` stamps the event and queues it; everything
 * queued during one turn of the event loop is written in one transaction when
 * that turn ends (setImmediate), instead of one BEGIN/INSERT/COMMIT each.
 * - Order: events are written in the order recorded. The Inventory flushes the
 *   queue before its own writes that add events, so ids follow call order.
 * - Visibility: reads through this EventLog (`events`, `since`, `lastId`)
 *   flush first and see every event recorded so far. Another process sharing
 *   the file (a `kickswarm node show`) sees an event once the turn that
 *   recorded it has ended: at most one event-loop turn later, which for that
 *   reader is the same as the request having come a moment later.
 * - Durability: `flush()` (and the Inventory's `close()`) writes the queue. An
 *   event queued in the turn of a kill -9 or a crash is lost; the file stays
 *   consistent.
 * - Bound: a node never keeps more than EVENTS_PER_NODE events, whoever
 *   wrote them and in whatever order (every writer prunes: direct writes and
 *   Inventory transactions each time, queued writes every PRUNE_EVERY-th
 *   event of a node, always down to EVENTS_PER_NODE - PRUNE_EVERY).
 * - Failures never reach the caller: an event whose node was removed meanwhile
 *   is dropped with a warning while the rest of its batch is written; any other
 *   failure drops the batch with a warning. (A direct write that failed was
 *   equally lost, and the server's callers only logged it.)
 */
import type Database from 'better-sqlite3';
import type { NodeName } from '../../protocol/node.js';
import type { Logger } from '../log.js';
import type { StatementCache } from './statements.js';
import type { NodeEvent } from './types.js';

/** Events kept per node at most; older ones are pruned as new ones arrive. */
export const EVENTS_PER_NODE = 500;
/**
 * Queued writes prune a node on its first event in this process and then on
 * every PRUNE_EVERY-th, down to EVENTS_PER_NODE - PRUNE_EVERY: never more than
 * EVENTS_PER_NODE, at a fraction of the cost of pruning on every event.
 */
export const PRUNE_EVERY = 50;
const KEEP_AFTER_PRUNE = EVENTS_PER_NODE - PRUNE_EVERY;
/** Nodes whose write counts are remembered; beyond, the counts start afresh (each node is pruned on its next event). */
const MAX_COUNTED_NODES = 100_000;

interface EventRow {
  id: number;
  node: string;
  at: string;
  kind: string;
  message: string;
  data: string | null;
}

interface PendingEvent {
  node: string;
  at: string;
  kind: string;
  message: string;
  data: string | null;
}

function toEvent(r: EventRow): NodeEvent {
  return {
    id: r.id,
    node: r.node as NodeName,
    at: r.at,
    kind: r.kind,
    message: r.message,
    data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : undefined,
  };
}

function isConstraintError(e: unknown): boolean {
  return typeof (e as { code?: unknown })?.code === 'string' && (e as { code: string }).code.startsWith('SQLITE_CONSTRAINT');
}

export interface EventLogOptions {
  /** Queue events and write them once per event-loop turn (see the module comment). */
  queued: boolean;
  /** The event's timestamp (ISO 8601). */
  stamp: () => string;
  /** Where dropped queued events are reported. */
  log?: Logger;
}

export class EventLog {
  private queue: PendingEvent[] = [];
  /** Queued events written per node since its last prune (absent: prune on its next event). */
  private readonly sincePrune = new Map<string, number>();
  private scheduled = false;
  private readonly writeBatch: (batch: PendingEvent[]) => void;
  private readonly writeOne: (e: PendingEvent) => void;

  constructor(
    private readonly db: Database.Database,
    private readonly stmt: StatementCache,
    private readonly opts: EventLogOptions,
  ) {
    this.writeBatch = db.transaction((batch: PendingEvent[]) => {
      const due = new Set<string>();
      for (const e of batch) {
        try {
          this.insertRow(e);
          const n = this.sincePrune.get(e.node);
          if (n === undefined || n + 1 >= PRUNE_EVERY) due.add(e.node);
          else this.sincePrune.set(e.node, n + 1);
        } catch (err) {
          // A constraint failure undoes only its own statement: the node was removed meanwhile.
          if (!isConstraintError(err)) throw err;
          this.opts.log?.warn({ node: e.node, kind: e.kind, err: (err as Error).message }, 'node event dropped: node no longer exists');
        }
      }
      if (this.sincePrune.size > MAX_COUNTED_NODES) this.sincePrune.clear();
      for (const n of due) {
        this.prune(n);
        this.sincePrune.set(n, 0);
      }
    }).immediate;
    this.writeOne = db.transaction((e: PendingEvent) => {
      this.insertRow(e);
      this.prune(e.node);
    });
  }

  /** Events waiting to be written (queued mode). */
  get pending(): number {
    return this.queue.length;
  }

  /** Records an event: at once (direct) or at the end of this turn (queued). */
  record(node: NodeName, kind: string, message: string, data?: Record<string, unknown>): void {
    const e: PendingEvent = { node, at: this.opts.stamp(), kind, message, data: data ? JSON.stringify(data) : null };
    if (!this.opts.queued) {
      this.writeOne(e);
      return;
    }
    this.queue.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Inserts one event now, inside the caller's transaction (throws like any statement). */
  insert(node: string, kind: string, message: string, data?: Record<string, unknown>): void {
    this.insertRow({ node, at: this.opts.stamp(), kind, message, data: data ? JSON.stringify(data) : null });
    this.prune(node);
  }

  /** Writes every queued event in one transaction; never throws. Once the database is closed, drops them with a warning. */
  flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    if (!this.db.open) {
      this.opts.log?.warn({ events: batch.length }, 'node events dropped: recorded after the inventory was closed');
      return;
    }
    try {
      this.writeBatch(batch);
    } catch (err) {
      this.opts.log?.warn({ events: batch.length, err: (err as Error).message }, 'node events dropped: could not write them');
    }
  }

  private insertRow(e: PendingEvent): void {
    this.stmt('INSERT INTO events (node, at, kind, message, data) VALUES (?, ?, ?, ?, ?)').run(e.node, e.at, e.kind, e.message, e.data);
  }

  /** Deletes all but the node's newest EVENTS_PER_NODE - PRUNE_EVERY events. */
  private prune(node: string): void {
    this.stmt('DELETE FROM events WHERE node = ? AND id <= (SELECT id FROM events WHERE node = ? ORDER BY id DESC LIMIT 1 OFFSET ?)').run(node, node, KEEP_AFTER_PRUNE);
  }

  /** The node's most recent events, oldest first. */
  events(node: NodeName, limit = 50): NodeEvent[] {
    this.flush();
    const rows = this.stmt('SELECT * FROM (SELECT * FROM events WHERE node = ? ORDER BY id DESC LIMIT ?) ORDER BY id').all(node, limit) as EventRow[];
    return rows.map(toEvent);
  }

  /** Events of every node with id > `afterId`, oldest first, at most 1000. */
  since(afterId: number, kind?: string): NodeEvent[] {
    this.flush();
    const rows = (
      kind ? this.stmt('SELECT * FROM events WHERE id > ? AND kind = ? ORDER BY id LIMIT 1000').all(afterId, kind) : this.stmt('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT 1000').all(afterId)
    ) as EventRow[];
    return rows.map(toEvent);
  }

  /** The id of the newest event (0 when there is none). */
  lastId(): number {
    this.flush();
    return (this.stmt('SELECT COALESCE(MAX(id), 0) AS id FROM events').get() as { id: number }).id;
  }
}
