/**
 * Install sessions on the wire. When a node's boot action becomes `install`
 * or `capture`, the frontend opens a session: a random one-time token bound to
 * the node's MAC and IP, with an expiry. The node gets the token only in its
 * own boot config (kernel command line `kickswarm.session=`) and sends it back
 * with every node-facing request: `X-Kickswarm-Session: <token>` (or a
 * `session=` query parameter for tools that cannot set headers). The flip to
 * `os` ends it.
 *
 *   GET /install/sbin/public/secrets.cgi   the profile's `secrets`, once per session
 */
import { InvalidInputError } from './errors.js';

export const SESSION_HEADER = 'X-Kickswarm-Session';
export const SESSION_PARAM = 'session';
/** Kernel command line key of the session token. */
export const CMDLINE_SESSION = 'kickswarm.session';
export const SECRETS_PATH = '/install/sbin/public/secrets.cgi';

/** 32 random bytes, base64url: 43 characters. */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** A session token as the frontend makes them. */
export type SessionToken = string & { readonly __brand: 'SessionToken' };

/** Parses a presented token; anything but 43 base64url characters is InvalidInputError. */
export function parseSessionToken(s: string): SessionToken {
  const t = s.trim();
  if (!TOKEN_RE.test(t)) throw new InvalidInputError('a session token is 43 base64url characters');
  return t as SessionToken;
}

/** True when `s` has the shape of a session token (for quiet checks). */
export function isSessionTokenShape(s: string): boolean {
  return TOKEN_RE.test(s);
}

/** One file the installer writes into the installed root from the profile's `secrets`. */
export interface SecretFile {
  /** Absolute path inside the installed root. */
  path: string;
  /** Octal permission bits, e.g. `0600`. */
  mode: string;
  /** The file's text. */
  content: string;
}

/** `GET SECRETS_PATH` answer (200 application/json). */
export interface SecretsResponse {
  node: string;
  files: SecretFile[];
}

/** Validates a secrets answer from the wire. */
export function parseSecretsResponse(body: unknown): SecretsResponse {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('secrets answer must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.node !== 'string' || !Array.isArray(b.files)) throw new InvalidInputError('secrets answer needs "node" and "files"');
  const files = b.files.map((f, i): SecretFile => {
    const o = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
    if (typeof o.path !== 'string' || !isSecretPath(o.path)) throw new InvalidInputError(`secrets file ${i}: "path" must be an absolute path without ".." segments`);
    if (typeof o.mode !== 'string' || !/^0?[0-7]{3}$/.test(o.mode)) throw new InvalidInputError(`secrets file ${i}: "mode" must be octal like 0600`);
    if (typeof o.content !== 'string') throw new InvalidInputError(`secrets file ${i}: "content" must be a string`);
    return { path: o.path, mode: o.mode, content: o.content };
  });
  return { node: b.node, files };
}

/** An absolute path with no empty, `.` or `..` segment. */
export function isSecretPath(p: string): boolean {
  if (!p.startsWith('/') || p.length > 1024) return false;
  return p
    .slice(1)
    .split('/')
    .every((s) => s !== '' && s !== '.' && s !== '..' && !s.includes('\0'));
}
