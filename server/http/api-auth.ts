/**
 * Who may call `/api/v1`, and what they may do. A caller is either a bearer
 * token (`Authorization: Bearer <token>`, role from the token store) or a
 * dashboard session cookie, whose writes must also carry the session's CSRF
 * token in `X-CSRF-Token`. `admin` may do everything; `viewer` only GET and
 * HEAD (403 on any write). No credential, or a wrong one, is a 401.
 */
import type { Context, Middleware } from 'koa';
import { ForbiddenError, UnauthorizedError } from '../../protocol/errors.js';
import { CSRF_HEADER, SESSION_COOKIE, type SessionStore, sameSecret } from '../auth/sessions.js';
import type { Role } from '../auth/tokens.js';
import { bearerToken } from './auth.js';

export interface ApiAuthOptions {
  /** The role of a presented bearer token, or undefined when it is none of ours. */
  roleForToken: (token: string) => Role | undefined;
  sessions?: SessionStore;
}

const SAFE = new Set(['GET', 'HEAD']);

/** The caller's role (throws 401/403); stores it in `ctx.state.role`. */
export function callerRole(ctx: Context, o: ApiAuthOptions): Role {
  const header = ctx.get('authorization');
  const safe = SAFE.has(ctx.method);
  let role: Role | undefined;
  if (header) {
    const presented = bearerToken(header);
    role = presented === undefined ? undefined : o.roleForToken(presented);
    if (!role) {
      ctx.set('WWW-Authenticate', 'Bearer realm="kickswarm"');
      throw new UnauthorizedError(presented === undefined ? 'a bearer token is required (Authorization: Bearer <token>)' : 'wrong bearer token');
    }
  } else {
    const s = o.sessions?.get(ctx.cookies.get(SESSION_COOKIE));
    if (!s) {
      ctx.set('WWW-Authenticate', 'Bearer realm="kickswarm"');
      throw new UnauthorizedError('a bearer token is required (Authorization: Bearer <token>)');
    }
    if (!safe && !sameSecret(s.csrf, ctx.get(CSRF_HEADER))) throw new ForbiddenError('missing or wrong X-CSRF-Token for this session');
    role = s.role;
  }
  if (role === 'viewer' && !safe) throw new ForbiddenError('a viewer can read but not change anything');
  ctx.state.role = role;
  return role;
}

export function apiAuth(o: ApiAuthOptions): Middleware {
  return async (ctx, next) => {
    callerRole(ctx, o);
    await next();
  };
}
