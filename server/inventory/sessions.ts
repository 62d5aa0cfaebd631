/**
 * Install sessions in the inventory (the `sessions` table): at most one per
 * node, opened when its boot action becomes `install` or `capture`, ended
 * (deleted) when it becomes anything else or the node is removed. A session
 * binds a random token to the node's MAC and IP at opening and carries its
 * expiry; one-time uses (the capture upload, the secrets fetch) are claimed
 * atomically so a replay finds them spent. The token is kept in the clear
 * because the node's boot config must carry it again when the node reboots
 * mid-install; the database file is readable by the frontend's user only.
 */
import crypto from 'node:crypto';
import type { BootAction, Ipv4, Mac, NodeName } from '../../protocol/node.js';
import type { SessionToken } from '../../protocol/session.js';
import type { StatementCache } from './statements.js';

/** 6 hours, as Foreman's install token. */
export const DEFAULT_SESSION_TTL_SECONDS = 6 * 3600;

export type SessionAction = Extract<BootAction, 'install' | 'capture'>;
/** One-time uses of a session. */
export type SessionUse = 'upload' | 'secrets';

export interface InstallSession {
  node: NodeName;
  token: SessionToken;
  action: SessionAction;
  /** The node's MAC and IP when the session opened. */
  mac: Mac;
  ip: Ipv4;
  openedAt: string;
  expiresAt: string;
  /** When the capture upload was started with it (it then serves no other). */
  uploadAt: string | null;
  /** When the profile's secrets were handed out with it. */
  secretsAt: string | null;
}

interface SessionRow {
  node: string;
  token: string;
  action: string;
  mac: string;
  ip: string;
  opened_at: string;
  expires_at: string;
  upload_at: string | null;
  secrets_at: string | null;
}

function toSession(r: SessionRow): InstallSession {
  return {
    node: r.node as NodeName,
    token: r.token as SessionToken,
    action: r.action as SessionAction,
    mac: r.mac as Mac,
    ip: r.ip as Ipv4,
    openedAt: r.opened_at,
    expiresAt: r.expires_at,
    uploadAt: r.upload_at,
    secretsAt: r.secrets_at,
  };
}

export function isSessionAction(a: BootAction): a is SessionAction {
  return a === 'install' || a === 'capture';
}

/** 32 random bytes, base64url (43 characters). */
export function newSessionToken(): SessionToken {
  return crypto.randomBytes(32).toString('base64url') as SessionToken;
}

/** Session statements over one connection; callers own the transactions. */
export class SessionTable {
  constructor(
    private readonly stmt: StatementCache,
    private readonly ttlSeconds: number,
  ) {}

  get(node: NodeName): InstallSession | undefined {
    const r = this.stmt('SELECT * FROM sessions WHERE node = ?').get(node) as SessionRow | undefined;
    return r && toSession(r);
  }

  byToken(token: string): InstallSession | undefined {
    const r = this.stmt('SELECT * FROM sessions WHERE token = ?').get(token) as SessionRow | undefined;
    return r && toSession(r);
  }

  /**
   * Keeps the node's session if it is live, for the same action and the same
   * MAC and IP, and none of its one-time uses is spent; otherwise replaces it
   * with a new one (so setting the action again gives a node whose install
   * broke off after the secrets a fresh session). Returns the session and
   * whether it is new.
   */
  ensure(node: { name: NodeName; mac: Mac; ip: Ipv4 }, action: SessionAction, now: Date): { session: InstallSession; opened: boolean } {
    const old = this.get(node.name);
    if (old && old.action === action && old.mac === node.mac && old.ip === node.ip && Date.parse(old.expiresAt) > now.getTime() && old.uploadAt === null && old.secretsAt === null) {
      return { session: old, opened: false };
    }
    const at = now.toISOString();
    const expires = new Date(now.getTime() + this.ttlSeconds * 1000).toISOString();
    this.stmt(
      `INSERT INTO sessions (node, token, action, mac, ip, opened_at, expires_at, upload_at, secrets_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)
       ON CONFLICT(node) DO UPDATE SET token = excluded.token, action = excluded.action, mac = excluded.mac, ip = excluded.ip,
         opened_at = excluded.opened_at, expires_at = excluded.expires_at, upload_at = NULL, secrets_at = NULL`,
    ).run(node.name, newSessionToken(), action, node.mac, node.ip, at, expires);
    return { session: this.get(node.name)!, opened: true };
  }

  /** Ends the node's session; true when there was one. */
  end(node: NodeName): boolean {
    return this.stmt('DELETE FROM sessions WHERE node = ?').run(node).changes > 0;
  }

  /** Marks `use` as spent on the session of `token`; false when it already was (or the session is gone). */
  claim(token: string, use: SessionUse, now: Date): boolean {
    const col = use === 'upload' ? 'upload_at' : 'secrets_at';
    return this.stmt(`UPDATE sessions SET ${col} = ? WHERE token = ? AND ${col} IS NULL`).run(now.toISOString(), token).changes > 0;
  }
}
