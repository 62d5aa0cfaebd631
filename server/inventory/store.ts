/**
 * The node inventory: one SQLite database (WAL) in the data dir, shared by the
 * running server and every CLI command. Nothing is cached in memory, so a change
 * made by one process is seen by the next query of another: there is no sync step.
 * Every write is one transaction; a kill -9 at any point leaves a consistent file.
 * Statements are prepared once per connection (./statements.ts). Node events
 * are written at once, or with `queueEvents` (the server) once per event-loop
 * turn; ./events.ts states that contract.
 */
import Database from 'better-sqlite3';
import { ConflictError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { type BootAction, type Ipv4, type Mac, type NodeName, intToIpv4, ipv4ToInt } from '../../protocol/node.js';
import type { Logger } from '../log.js';
import { EventLog } from './events.js';
import { DEFAULT_SESSION_TTL_SECONDS, type InstallSession, isSessionAction, SessionTable, type SessionUse } from './sessions.js';
import { InstallRecords, type InstallLogLine, type ServedKickstart } from './install-records.js';
import { MIGRATIONS } from './schema.js';
import { type StatementCache, statementCache } from './statements.js';
import type { DiscoverySession, InstallProgress, NewNode, NodeEvent, NodeRecord, NodeSelector, RunningFrontend } from './types.js';
import { type ImportPlan, type ImportRow, planImport } from './bulk.js';

/** What an import changed on a node, for its event history (attribute names only: values may be secrets). */
function describeChange(b: NodeRecord, n: NodeRecord): string {
  const parts: string[] = [];
  for (const k of ['mac', 'ip', 'uuid', 'appliance', 'rack', 'rank'] as const) {
    if (b[k] !== n[k]) parts.push(`${k} ${b[k] ?? '-'} -> ${n[k] ?? '-'}`);
  }
  const keys = new Set([...Object.keys(b.attrs), ...Object.keys(n.attrs)]);
  const changed = [...keys].filter((k) => b.attrs[k] !== n.attrs[k]).sort();
  if (changed.length) parts.push(`attributes ${changed.join(', ')}`);
  return parts.join('; ');
}

interface NodeRow {
  name: string;
  mac: string;
  ip: string;
  uuid: string | null;
  appliance: string;
  rack: number | null;
  rank: number | null;
  attrs: string;
  boot_action: string;
  install: string | null;
  pending: number;
  created_at: string;
  updated_at: string;
}

function toRecord(r: NodeRow): NodeRecord {
  return {
    name: r.name as NodeName,
    mac: r.mac as Mac,
    ip: r.ip as Ipv4,
    uuid: r.uuid,
    appliance: r.appliance,
    rack: r.rack,
    rank: r.rank,
    attrs: JSON.parse(r.attrs) as Record<string, string>,
    bootAction: r.boot_action as BootAction,
    install: r.install ? (JSON.parse(r.install) as InstallProgress) : null,
    pending: r.pending === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface InventoryOptions {
  /** Clock, injectable for tests. */
  now?: () => Date;
  readonly?: boolean;
  /**
   * Queue node events and write them once per event-loop turn (the server;
   * see ./events.ts). Default: each event is its own transaction (the CLI).
   */
  queueEvents?: boolean;
  /** Where the inventory reports what it cannot do in the background (dropped queued events). */
  log?: Logger;
  /** Lifetime of the install sessions this connection opens (default 6 h; config `sessions.ttlSeconds`). */
  sessionTtlSeconds?: number;
}

export class Inventory {
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly stmt: StatementCache;
  private readonly eventLog: EventLog;
  private readonly sessions: SessionTable;
  private readonly records: InstallRecords;
  private closed = false;

  constructor(file: string, opts: InventoryOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    this.db = new Database(file, { readonly: opts.readonly ?? false });
    this.stmt = statementCache(this.db);
    this.eventLog = new EventLog(this.db, this.stmt, { queued: opts.queueEvents ?? false, stamp: () => this.stamp(), log: opts.log });
    this.records = new InstallRecords(this.db, this.stmt, () => this.stamp());
    this.db.pragma('busy_timeout = 5000');
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    }
    this.db.pragma('foreign_keys = ON');
    if (!opts.readonly) this.migrate();
    this.sessions = new SessionTable(this.stmt, opts.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db
        .transaction(() => {
          this.db.exec(MIGRATIONS[v]!);
          this.db.pragma(`user_version = ${v + 1}`);
        })
        .immediate();
    }
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  /** Writes queued events, then closes the database. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.eventLog.flush();
    this.db.close();
  }

  /** Adds a node; a clash on name, MAC, IP or UUID is refused naming the node that holds it. */
  addNode(n: NewNode): NodeRecord {
    this.eventLog.flush();
    return this.db
      .transaction(() => {
        this.assertFree(n);
        const at = this.stamp();
        this.stmt(
          `INSERT INTO nodes (name, mac, ip, uuid, appliance, rack, rank, attrs, boot_action, pending, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(n.name, n.mac, n.ip, n.uuid ?? null, n.appliance, n.rack ?? null, n.rank ?? null, JSON.stringify(n.attrs ?? {}), n.bootAction ?? 'os', n.pending ? 1 : 0, at, at);
        this.eventLog.insert(n.name, 'inventory', `added (mac ${n.mac}, ip ${n.ip}, appliance ${n.appliance})`);
        const added = this.requireNode(n.name);
        this.syncSession(added, 'added');
        return added;
      })
      .immediate();
  }

  private assertFree(n: NewNode): void {
    const byName = this.getNode(n.name);
    if (byName) throw new ConflictError(`node ${n.name} already exists`, { node: byName.name });
    const byMac = this.findByMac(n.mac);
    if (byMac) throw new ConflictError(`MAC ${n.mac} already belongs to node ${byMac.name}`, { node: byMac.name });
    const byIp = this.findByIp(n.ip);
    if (byIp) throw new ConflictError(`IP ${n.ip} already belongs to node ${byIp.name}`, { node: byIp.name });
    if (n.uuid) {
      const byUuid = this.findByUuid(n.uuid);
      if (byUuid) throw new ConflictError(`UUID ${n.uuid} already belongs to node ${byUuid.name}`, { node: byUuid.name });
    }
  }

  removeNode(name: NodeName): void {
    this.eventLog.flush();
    const res = this.stmt('DELETE FROM nodes WHERE name = ?').run(name);
    if (res.changes === 0) throw new NotFoundError(`no node named ${name}`, { node: name });
  }

  getNode(name: string): NodeRecord | undefined {
    const r = this.stmt('SELECT * FROM nodes WHERE name = ?').get(name) as NodeRow | undefined;
    return r && toRecord(r);
  }

  requireNode(name: string): NodeRecord {
    const n = this.getNode(name);
    if (!n) throw new NotFoundError(`no node named ${name}`, { node: name });
    return n;
  }

  findByMac(mac: Mac): NodeRecord | undefined {
    const r = this.stmt('SELECT * FROM nodes WHERE mac = ?').get(mac) as NodeRow | undefined;
    return r && toRecord(r);
  }

  findByIp(ip: Ipv4): NodeRecord | undefined {
    const r = this.stmt('SELECT * FROM nodes WHERE ip = ?').get(ip) as NodeRow | undefined;
    return r && toRecord(r);
  }

  findByUuid(uuid: string): NodeRecord | undefined {
    const r = this.stmt('SELECT * FROM nodes WHERE uuid = ?').get(uuid) as NodeRow | undefined;
    return r && toRecord(r);
  }

  /** All nodes, sorted by appliance, rack, rank, name. */
  listNodes(filter: { appliance?: string } = {}): NodeRecord[] {
    const rows = (
      filter.appliance
        ? this.stmt('SELECT * FROM nodes WHERE appliance = ? ORDER BY appliance, rack, rank, name').all(filter.appliance)
        : this.stmt('SELECT * FROM nodes ORDER BY appliance, rack, rank, name').all()
    ) as NodeRow[];
    return rows.map(toRecord);
  }

  count(): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM nodes').get() as { n: number }).n;
  }

  /** Resolves a selector to nodes; an unknown name in a name list is a NotFoundError (nothing changes). */
  select(sel: NodeSelector): NodeRecord[] {
    if ('all' in sel) return this.listNodes();
    if ('appliance' in sel) return this.listNodes({ appliance: sel.appliance });
    return sel.names.map((n) => this.requireNode(n));
  }

  /**
   * Sets the boot action of every selected node in one transaction and records
   * an event on each whose action changed. Returns the selected nodes, updated.
   */
  setBootAction(sel: NodeSelector, action: BootAction, why = 'admin'): NodeRecord[] {
    this.eventLog.flush();
    return this.db
      .transaction(() => {
        const nodes = this.select(sel);
        const at = this.stamp();
        const upd = this.stmt('UPDATE nodes SET boot_action = ?, updated_at = ? WHERE name = ?');
        for (const n of nodes) {
          if (n.bootAction !== action) {
            upd.run(action, at, n.name);
            this.eventLog.insert(n.name, 'boot', `boot action ${n.bootAction} -> ${action} (${why})`, { from: n.bootAction, to: action });
          }
          this.syncSession({ ...n, bootAction: action }, why);
        }
        return nodes.map((n) => this.requireNode(n.name));
      })
      .immediate();
  }

  /**
   * Opens (or keeps a live) install session for a node whose action is
   * `install` or `capture`, ends it for any other action; records either in
   * the node's history. Runs inside the caller's transaction.
   */
  private syncSession(n: NodeRecord, why: string): void {
    if (isSessionAction(n.bootAction)) {
      const { session, opened } = this.sessions.ensure(n, n.bootAction, this.now());
      if (opened)
        this.eventLog.insert(n.name, 'session', `install session opened for ${session.action} (${why}); expires ${session.expiresAt}`, { action: session.action, expiresAt: session.expiresAt });
    } else if (this.sessions.end(n.name)) {
      this.eventLog.insert(n.name, 'session', `install session ended (boot action ${n.bootAction}; ${why})`);
    }
  }

  /** The node's install session (live, expired or spent: the caller judges). */
  session(name: NodeName): InstallSession | undefined {
    return this.sessions.get(name);
  }

  /** The session a presented token belongs to, if any. */
  sessionByToken(token: string): InstallSession | undefined {
    return this.sessions.byToken(token);
  }

  /** Spends a one-time use of a session; false when it was spent already or the session is gone. */
  claimSession(token: string, use: SessionUse): boolean {
    return this.sessions.claim(token, use, this.now());
  }

  /** Replaces a node's attributes with `attrs` merged over the old ones; `null` values delete keys. */
  updateAttrs(name: NodeName, attrs: Record<string, string | null>): NodeRecord {
    return this.db
      .transaction(() => {
        const n = this.requireNode(name);
        const next: Record<string, string> = { ...n.attrs };
        for (const [k, v] of Object.entries(attrs)) {
          if (v === null) delete next[k];
          else next[k] = v;
        }
        this.stmt('UPDATE nodes SET attrs = ?, updated_at = ? WHERE name = ?').run(JSON.stringify(next), this.stamp(), name);
        return this.requireNode(name);
      })
      .immediate();
  }

  /**
   * Adds and updates nodes from a file's rows (./bulk.ts) in one transaction:
   * checked as a whole against the inventory inside the transaction, then
   * applied, or not at all (ImportProblemsError lists every problem). With
   * `dryRun` nothing is written. Returns what was (or would be) done.
   */
  importNodes(rows: ImportRow[], opts: { dryRun?: boolean } = {}): ImportPlan {
    this.eventLog.flush();
    return this.db
      .transaction(() => {
        const at = this.stamp();
        const plan = planImport(rows, this.listNodes(), at);
        if (opts.dryRun) return plan;
        // Free the unique values of nodes that change them first, so nodes may swap MACs or IPs.
        const free = this.stmt("UPDATE nodes SET mac = '~' || name, ip = '~' || name, uuid = NULL WHERE name = ?");
        for (const u of plan.update) {
          if (u.before.mac !== u.after.mac || u.before.ip !== u.after.ip || u.before.uuid !== u.after.uuid) free.run(u.after.name);
        }
        const upd = this.stmt('UPDATE nodes SET mac = ?, ip = ?, uuid = ?, appliance = ?, rack = ?, rank = ?, attrs = ?, updated_at = ? WHERE name = ?');
        for (const { before: b, after: n } of plan.update) {
          upd.run(n.mac, n.ip, n.uuid, n.appliance, n.rack, n.rank, JSON.stringify(n.attrs), at, n.name);
          this.eventLog.insert(n.name, 'inventory', `updated by import: ${describeChange(b, n)}`);
        }
        const ins = this.stmt(
          `INSERT INTO nodes (name, mac, ip, uuid, appliance, rack, rank, attrs, boot_action, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'os', ?, ?)`,
        );
        for (const n of plan.add) {
          ins.run(n.name, n.mac, n.ip, n.uuid, n.appliance, n.rack, n.rank, JSON.stringify(n.attrs), at, at);
          this.eventLog.insert(n.name, 'inventory', `added by import (mac ${n.mac}, ip ${n.ip}, appliance ${n.appliance})`);
        }
        return plan;
      })
      .immediate();
  }

  /** Stores the node's latest install progress (null clears it). */
  setInstall(name: NodeName, install: InstallProgress | null): void {
    const res = this.db.prepare('UPDATE nodes SET install = ?, updated_at = ? WHERE name = ?').run(install ? JSON.stringify(install) : null, this.stamp(), name);
    if (res.changes === 0) throw new NotFoundError(`no node named ${name}`, { node: name });
  }

  /** Records a node event (see InventoryOptions.queueEvents for when it is written). */
  recordEvent(name: NodeName, kind: string, message: string, data?: Record<string, unknown>): void {
    this.eventLog.record(name, kind, message, data);
  }

  /** Writes queued node events now (a no-op without `queueEvents`). */
  flushEvents(): void {
    this.eventLog.flush();
  }

  /** The node's most recent events, oldest first (queued ones included). */
  events(name: NodeName, limit = 50): NodeEvent[] {
    return this.eventLog.events(name, limit);
  }

  /** Events of every node with id > `afterId`, oldest first (for watchers such as `discover`). */
  eventsSince(afterId: number, kind?: string): NodeEvent[] {
    return this.eventLog.since(afterId, kind);
  }

  /** Appends installer log lines to the node's bounded log (./install-records.ts). */
  appendInstallLog(name: NodeName, lines: string[]): void {
    this.records.appendLog(name, lines);
  }

  installLog(name: NodeName, limit?: number): InstallLogLine[] {
    return this.records.log(name, limit);
  }

  /** The fleet view's columns of every node (./install-records.ts). */
  fleetRows(): ReturnType<InstallRecords['fleetRows']> {
    return this.records.fleetRows();
  }

  fleetVersion(): string {
    return this.records.fleetVersion();
  }

  /** Bytes the nodes' current installs got from peers and from the frontend, summed. */
  installByteTotals(): { fromPeers: number; fromFrontend: number } {
    return this.records.byteTotals();
  }

  /** Remembers the kickstart a node was served (masked text + hash), for reinstall plans. */
  setServedKickstart(name: NodeName, k: { sha256: string; text: string }): void {
    this.records.setServedKickstart(name, k);
  }

  servedKickstart(name: NodeName): ServedKickstart | undefined {
    return this.records.servedKickstart(name);
  }

  lastEventId(): number {
    return this.eventLog.lastId();
  }

  getSetting<T>(key: string): T | undefined {
    const r = this.stmt('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as T) : undefined;
  }

  setSetting(key: string, value: unknown): void {
    if (value === undefined || value === null) this.stmt('DELETE FROM settings WHERE key = ?').run(key);
    else this.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  /** The running frontend of this data dir, if its process is alive. */
  getRunningFrontend(): RunningFrontend | undefined {
    const r = this.getSetting<RunningFrontend>('frontend');
    if (!r) return undefined;
    try {
      process.kill(r.pid, 0);
      return r;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM' ? r : undefined;
    }
  }

  setRunningFrontend(r: RunningFrontend | null): void {
    this.setSetting('frontend', r);
  }

  getDiscovery(): DiscoverySession | undefined {
    return this.getSetting<DiscoverySession>('discovery');
  }

  setDiscovery(d: DiscoverySession | null): void {
    this.setSetting('discovery', d);
  }

  /** Nodes registered by discovery that await approval. */
  countPending(): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM nodes WHERE pending = 1').get() as { n: number }).n;
  }

  /**
   * Approves discovered nodes (they may get their kickstart from now on), in
   * one transaction; an unknown name is a NotFoundError and changes nothing.
   * Returns the nodes that were pending, updated.
   */
  approve(sel: NodeSelector, why = 'admin'): NodeRecord[] {
    this.eventLog.flush();
    return this.db
      .transaction(() => {
        const nodes = this.select(sel).filter((n) => n.pending);
        const upd = this.stmt('UPDATE nodes SET pending = 0, updated_at = ? WHERE name = ?');
        for (const n of nodes) {
          upd.run(this.stamp(), n.name);
          this.eventLog.insert(n.name, 'discover', `approved (${why})`);
        }
        return nodes.map((n) => this.requireNode(n.name));
      })
      .immediate();
  }

  /**
   * Registers an unknown MAC under the active discovery session as the next
   * `<appliance>-<rack>-<rank>` with the next free IP at or after `firstIp`,
   * awaiting approval unless the session auto-approves. Returns the existing
   * node when the MAC is already known (a node retrying).
   */
  registerDiscovered(mac: Mac, via: string): NodeRecord {
    this.eventLog.flush();
    return this.db
      .transaction(() => {
        const known = this.findByMac(mac);
        if (known) return known;
        const d = this.getDiscovery();
        if (!d) throw new InvalidInputError('discovery is not active');
        const ranks = this.stmt('SELECT rank FROM nodes WHERE appliance = ? AND rack = ? AND rank IS NOT NULL').all(d.appliance, d.rack) as { rank: number }[];
        let rank = ranks.reduce((m, r) => Math.max(m, r.rank + 1), 0);
        while (this.getNode(`${d.appliance}-${d.rack}-${rank}`)) rank++;
        let ipn = ipv4ToInt(d.firstIp);
        while (this.findByIp(intToIpv4(ipn))) ipn++;
        const name = `${d.appliance}-${d.rack}-${rank}` as NodeName;
        // addNode opens the install session of the new node.
        const pending = d.autoApprove !== true;
        const node = this.addNode({ name, mac, ip: intToIpv4(ipn), appliance: d.appliance, rack: d.rack, rank, bootAction: 'install', pending });
        const msg = `discovered via ${via}: ${name} mac ${mac} ip ${node.ip}${pending ? ' (awaiting approval)' : ''}`;
        this.eventLog.insert(name, 'discover', msg, { mac, ip: node.ip, via, pending });
        return node;
      })
      .immediate();
  }
}
