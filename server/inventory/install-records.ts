/**
 * Two per-node records kept beside the event history:
 * - the installer's own log lines, sent with its progress reports; a ring of
 *   at most INSTALL_LOG_LINES per node (older lines are pruned as new arrive);
 * - the kickstart the node was last served (text with secrets masked, and
 *   its SHA-256), so a reinstall plan can show what would change.
 */
import type Database from 'better-sqlite3';
import type { NodeName } from '../../protocol/node.js';
import type { StatementCache } from './statements.js';

/** Installer log lines kept per node. */
export const INSTALL_LOG_LINES = 1000;

export interface InstallLogLine {
  id: number;
  at: string;
  line: string;
}

export interface ServedKickstart {
  at: string;
  sha256: string;
  /** The kickstart as served, secrets masked. */
  text: string;
}

export class InstallRecords {
  constructor(
    private readonly db: Database.Database,
    private readonly stmt: StatementCache,
    private readonly stamp: () => string,
  ) {}

  /** Appends lines to the node's log and prunes it to INSTALL_LOG_LINES; an unknown node is ignored. */
  appendLog(node: NodeName, lines: string[]): void {
    if (lines.length === 0) return;
    const at = this.stamp();
    this.db
      .transaction(() => {
        if (!this.stmt('SELECT 1 FROM nodes WHERE name = ?').get(node)) return;
        const ins = this.stmt('INSERT INTO install_log (node, at, line) VALUES (?, ?, ?)');
        for (const l of lines.slice(-INSTALL_LOG_LINES)) ins.run(node, at, l);
        const last = this.stmt('SELECT MAX(id) AS id FROM install_log WHERE node = ?').get(node) as { id: number };
        this.stmt(`DELETE FROM install_log WHERE node = ? AND id <= (SELECT id FROM install_log WHERE node = ? AND id <= ? ORDER BY id DESC LIMIT 1 OFFSET ?)`).run(
          node,
          node,
          last.id,
          INSTALL_LOG_LINES,
        );
      })
      .immediate();
  }

  /** The node's latest `limit` log lines, oldest first. */
  log(node: NodeName, limit = INSTALL_LOG_LINES): InstallLogLine[] {
    const rows = this.stmt('SELECT id, at, line FROM install_log WHERE node = ? ORDER BY id DESC LIMIT ?').all(node, limit) as InstallLogLine[];
    return rows.reverse();
  }

  /**
   * What the fleet view needs of every node, in inventory order, without
   * parsing attributes: [name, appliance, rack, rank, boot_action, install JSON].
   */
  fleetRows(): [string, string, number | null, number | null, string, string | null][] {
    return this.stmt('SELECT name, appliance, rack, rank, boot_action, install FROM nodes ORDER BY appliance, rack, rank, name').raw(true).all() as [
      string,
      string,
      number | null,
      number | null,
      string,
      string | null,
    ][];
  }

  /**
   * Changes whenever a node is added, removed or updated: the count and latest
   * update (writes by other processes), and this connection's count of changed
   * rows (its own writes, even two within one millisecond of the latest update).
   */
  fleetVersion(): string {
    const r = this.stmt('SELECT COUNT(*), MAX(updated_at), total_changes() FROM nodes').raw(true).get() as [number, string | null, number];
    return `${r[0]}:${r[1] ?? ''}:${r[2]}`;
  }

  /** Sums over the nodes' current install progress of bytes from peers and from the frontend. */
  byteTotals(): { fromPeers: number; fromFrontend: number } {
    const r = this.stmt(
      `SELECT COALESCE(SUM(json_extract(install, '$.bytesFromPeers')), 0) AS p, COALESCE(SUM(json_extract(install, '$.bytesFromFrontend')), 0) AS f
       FROM nodes WHERE install IS NOT NULL`,
    ).get() as { p: number; f: number };
    return { fromPeers: r.p, fromFrontend: r.f };
  }

  setServedKickstart(node: NodeName, k: { sha256: string; text: string }): void {
    this.stmt(
      `INSERT INTO served_kickstarts (node, at, sha256, text) SELECT name, ?, ?, ? FROM nodes WHERE name = ?
       ON CONFLICT(node) DO UPDATE SET at = excluded.at, sha256 = excluded.sha256, text = excluded.text`,
    ).run(this.stamp(), k.sha256, k.text, node);
  }

  servedKickstart(node: NodeName): ServedKickstart | undefined {
    return this.stmt('SELECT at, sha256, text FROM served_kickstarts WHERE node = ?').get(node) as ServedKickstart | undefined;
  }
}
