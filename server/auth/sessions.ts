/**
 * Dashboard sessions. Signing in with a token (or a one-time sign-in link)
 * makes a session: a random id sent only as an `HttpOnly`, `SameSite=Strict`
 * cookie, the role of the token, and a CSRF token that every write must echo
 * in `X-CSRF-Token`. Sessions live in the server's memory (a restart signs
 * everyone out), are bounded in number (the oldest goes first) and expire.
 */
import crypto from 'node:crypto';
import type { Role } from './tokens.js';

export const SESSION_COOKIE = 'kickswarm_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session {
  id: string;
  role: Role;
  csrf: string;
  expiresAt: number;
}

export interface SessionStoreOptions {
  /** Session lifetime (default 12 h). */
  ttlMs?: number;
  /** Most sessions kept (default 1,000). */
  maxSessions?: number;
  /** One-time sign-in link lifetime (default 15 min). */
  linkTtlMs?: number;
  now?: () => number;
}

function random(): string {
  return crypto.randomBytes(24).toString('base64url');
}

/** Constant-time string equality. */
export function sameSecret(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb) && a.length === b.length;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly links = new Map<string, { role: Role; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly linkTtlMs: number;
  private readonly now: () => number;

  constructor(opts: SessionStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 12 * 3600_000;
    this.max = opts.maxSessions ?? 1000;
    this.linkTtlMs = opts.linkTtlMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** A new session of `role` (the oldest is dropped beyond the bound). */
  create(role: Role): Session {
    this.prune();
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    const s: Session = { id: random(), role, csrf: random(), expiresAt: this.now() + this.ttlMs };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session with this id, if any. */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 100) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  /** A code for a one-time sign-in link (`/ui/login?once=CODE`); at most 100 outstanding. */
  oneTimeCode(role: Role): string {
    for (const [k, v] of this.links) if (v.expiresAt <= this.now()) this.links.delete(k);
    while (this.links.size >= 100) this.links.delete(this.links.keys().next().value!);
    const code = random();
    this.links.set(code, { role, expiresAt: this.now() + this.linkTtlMs });
    return code;
  }

  /** Spends a one-time code: a new session, or undefined when the code is unknown, used or expired. */
  redeem(code: string): Session | undefined {
    const l = this.links.get(code);
    if (!l) return undefined;
    this.links.delete(code);
    if (l.expiresAt <= this.now()) return undefined;
    return this.create(l.role);
  }

  get size(): number {
    return this.sessions.size;
  }

  private prune(): void {
    const t = this.now();
    for (const [k, s] of this.sessions) if (s.expiresAt <= t) this.sessions.delete(k);
  }
}
