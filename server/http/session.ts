/**
 * The install session token a request presents: the `X-Kickswarm-Session`
 * header, else a `session=` query parameter (anaconda fetches `ks=` URLs and
 * cannot add headers). Returned unchecked; BootPolicy.decide judges it.
 */
import type { Context } from 'koa';
import { SESSION_HEADER, SESSION_PARAM } from '../../protocol/session.js';
import { queryValue } from './body.js';

/** `url` with the value of every `session=` query parameter replaced, for logs. */
export function redactSession(url: string): string {
  return url.replace(/([?&]session=)[^&#]*/gi, '$1REDACTED');
}

export function presentedSession(ctx: Context): string | undefined {
  const h = ctx.get(SESSION_HEADER).trim();
  if (h) return h;
  const q = queryValue(ctx, SESSION_PARAM)?.trim();
  return q || undefined;
}
