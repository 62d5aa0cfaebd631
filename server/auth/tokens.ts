/**
 * API tokens and their roles. The data dir's `api-token` is always an `admin`
 * token; `kickswarm token create --role admin|viewer` adds more to
 * `<data-dir>/tokens.json` (mode 0600), which stores only each token's SHA-256,
 * never the token. A `viewer` may read everything and change nothing.
 *
 * The file is re-read whenever it changes on disk, so a token made by the CLI
 * works on a running server at once, and a revoked one stops at once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError, NotFoundError } from '../../protocol/errors.js';

export const ROLES = ['admin', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export function parseRole(input: string): Role {
  const s = input.trim().toLowerCase();
  if (!(ROLES as readonly string[]).includes(s)) throw new InvalidInputError(`unknown role ${JSON.stringify(input.slice(0, 40))} (want ${ROLES.join('|')})`);
  return s as Role;
}

/** One stored token: what `token list` shows. */
export interface TokenRecord {
  /** Short public id (names the token in lists and for revoking). */
  id: string;
  role: Role;
  /** SHA-256 (hex) of the token. */
  sha256: string;
  createdAt: string;
}

interface TokenFile {
  tokens: TokenRecord[];
}

function sha256(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

export class TokenStore {
  readonly file: string;
  private cache: { key: string; records: TokenRecord[] } | undefined;

  /** `dataDir`: the data dir root; `adminToken`: its `api-token` (empty: none). */
  constructor(
    dataDir: string,
    private readonly adminToken: string,
  ) {
    this.file = path.join(dataDir, 'tokens.json');
  }

  /** The stored tokens (never the tokens themselves). */
  list(): TokenRecord[] {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      return [];
    }
    const key = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (this.cache?.key === key) return this.cache.records;
    let records: TokenRecord[] = [];
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Partial<TokenFile>;
      records = (Array.isArray(parsed.tokens) ? parsed.tokens : []).filter((t) => typeof t?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(t.sha256) && (ROLES as readonly string[]).includes(t.role));
    } catch {
      records = [];
    }
    this.cache = { key, records };
    return records;
  }

  /** Makes a token of `role`; the returned token is shown once and stored only as its hash. */
  create(role: Role, now = new Date()): { token: string; record: TokenRecord } {
    const token = crypto.randomBytes(24).toString('base64url');
    const record: TokenRecord = { id: crypto.randomBytes(4).toString('hex'), role, sha256: sha256(token).toString('hex'), createdAt: now.toISOString() };
    this.write([...this.list(), record]);
    return { token, record };
  }

  /** Removes the token with this id; NotFoundError when there is none. */
  revoke(id: string): TokenRecord {
    const all = this.list();
    const hit = all.find((t) => t.id === id);
    if (!hit) throw new NotFoundError(`no token with id ${JSON.stringify(id.slice(0, 40))} (kickswarm token list)`);
    this.write(all.filter((t) => t.id !== id));
    return hit;
  }

  /**
   * The role a presented token has, or undefined when it is no token of this
   * data dir. Every comparison is of SHA-256 digests in constant time.
   */
  roleFor(presented: string): Role | undefined {
    if (presented === '') return undefined;
    const h = sha256(presented);
    if (this.adminToken !== '' && crypto.timingSafeEqual(sha256(this.adminToken), h)) return 'admin';
    let role: Role | undefined;
    for (const t of this.list()) if (crypto.timingSafeEqual(Buffer.from(t.sha256, 'hex'), h)) role = t.role;
    return role;
  }

  private write(records: TokenRecord[]): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ tokens: records } satisfies TokenFile, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.cache = undefined;
  }
}
