/**
 * Who may use a route. Every check lives here, as router-level middleware
 * (`router.use(...)`), so it runs exactly when one of that router's routes
 * matched the request, however the path was spelled: authorisation is never
 * decided by re-reading the path.
 *
 * - Admin: `Authorization: Bearer <token>`, compared in constant time. A
 *   missing, malformed or wrong token is a 401 with `WWW-Authenticate: Bearer`;
 *   an empty configured token accepts nothing. `adminCredential()` is the one
 *   function that says whether a request carries admin rights (a role store
 *   can slot in there).
 * - Extra credentials (the OMF token): accepted like the admin token for the
 *   routes that name them.
 * - Registered node or admin (images when `images.public` is off): the source
 *   IP belongs to a registered node, or the request carries the admin token;
 *   anything else is a 403 (401 for a wrong token).
 */
import crypto from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { ForbiddenError, UnauthorizedError } from '../../protocol/errors.js';

function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

/** True when `presented` equals `expected`; time does not depend on where they differ or on their lengths. */
export function tokenMatches(expected: string, presented: string): boolean {
  if (expected === '') return false;
  return crypto.timingSafeEqual(digest(expected), digest(presented));
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1] : undefined;
}

/** What a request presents: nothing, a token that matches one of `accepted`, or a wrong one. */
export type Credential = 'none' | 'valid' | 'wrong';

/** Checks the request's bearer token against every accepted token (each compared in constant time). */
export function presentedCredential(ctx: Context, accepted: readonly string[]): Credential {
  const presented = bearerToken(ctx.get('authorization'));
  if (presented === undefined) return 'none';
  let ok = false;
  for (const t of accepted) if (tokenMatches(t, presented)) ok = true;
  return ok ? 'valid' : 'wrong';
}

/** Whether the request carries admin rights (today: the admin bearer token). */
export function adminCredential(ctx: Context, adminToken: string): Credential {
  return presentedCredential(ctx, [adminToken]);
}

function unauthorized(ctx: Context, c: Credential): never {
  ctx.set('WWW-Authenticate', 'Bearer realm="kickswarm"');
  throw new UnauthorizedError(c === 'none' ? 'a bearer token is required (Authorization: Bearer <token>)' : 'wrong bearer token');
}

/**
 * Router middleware: only requests with the admin token (or one of
 * `alsoAccepted`, e.g. the OMF token) get through; 401 otherwise.
 */
export function requireAdmin(adminToken: string, alsoAccepted: readonly (string | undefined)[] = []): Middleware {
  const extra = alsoAccepted.filter((t): t is string => typeof t === 'string' && t !== '');
  return async (ctx, next) => {
    const c = adminCredential(ctx, adminToken) === 'valid' ? 'valid' : presentedCredential(ctx, extra);
    if (c !== 'valid') unauthorized(ctx, bearerToken(ctx.get('authorization')) === undefined ? 'none' : 'wrong');
    await next();
  };
}

/**
 * Router middleware for what registered nodes and admins may read (images,
 * metrics): `isPublic()` lets everyone through; else a request whose source
 * belongs to a registered node (`isNode`) or that carries the admin token.
 * Anyone else gets a 403 that names nothing of the inventory (a 401 when no
 * token was presented and nodes are not let in on their own); a wrong token a 401.
 */
export function requireNodeOrAdmin(opts: {
  adminToken: string;
  isPublic: () => boolean;
  /** True when the request comes from a registered node; undefined means nodes are not let in on their own. */
  isNode?: (ctx: Context) => boolean;
  /** What is protected, for the 403 text, e.g. `image downloads (images.public is off)`. */
  what: string;
}): Middleware {
  // ctx.state.trustedCaller: the admin token or a public route let this request in (later checks that
  // only concern nodes, such as the install session, do not apply to it).
  return async (ctx, next) => {
    if (opts.isPublic()) {
      ctx.state.trustedCaller = true;
    } else {
      const c = adminCredential(ctx, opts.adminToken);
      if (c === 'valid') ctx.state.trustedCaller = true;
      if (c === 'wrong') unauthorized(ctx, c);
      if (c === 'none' && !opts.isNode) unauthorized(ctx, c);
      if (c !== 'valid' && !(opts.isNode?.(ctx) ?? false)) {
        throw new ForbiddenError(`${opts.what} need ${opts.isNode ? 'a registered node or ' : ''}the admin token`);
      }
    }
    await next();
  };
}
