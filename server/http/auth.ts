/**
 * Bearer-token check for `/api/v1`: `Authorization: Bearer <token>`, compared
 * in constant time. A missing, malformed or wrong token is a 401 with
 * `WWW-Authenticate: Bearer`; an empty configured token accepts nothing.
 */
import crypto from 'node:crypto';
import type { Middleware } from 'koa';
import { UnauthorizedError } from '../../protocol/errors.js';

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

/** Middleware that lets a request through only with the right bearer token. */
export function bearerAuth(token: string): Middleware {
  return async (ctx, next) => {
    const presented = bearerToken(ctx.get('authorization'));
    if (presented === undefined || !tokenMatches(token, presented)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="kickswarm"');
      throw new UnauthorizedError(presented === undefined ? 'a bearer token is required (Authorization: Bearer <token>)' : 'wrong bearer token');
    }
    await next();
  };
}
