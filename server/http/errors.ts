/**
 * The one place where errors become HTTP answers. KickswarmError codes map to
 * statuses; errors from libraries below us that carry a 4xx (`status` +
 * `expose`, e.g. Koa's own) keep it; anything else is a 500 with a generic
 * body and the stack only in the log. The body's shape follows the route
 * family: JSON under `/api/`, XML under the OMF routes, plain text elsewhere.
 */
import type { Context, Middleware } from 'koa';
import { type ErrorCode, BusyError, isKickswarmError } from '../../protocol/errors.js';
import type { ApiErrorBody } from '../../protocol/api.js';
import type { Logger } from '../log.js';
import { redactSession } from './session.js';
import { xmlEscape } from './xml.js';

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  corrupt_image: 422,
  template_error: 500,
  internal: 500,
  busy: 503,
  unavailable: 503,
  too_large: 413,
  method_not_allowed: 405,
};

/** The HTTP status for a KickswarmError code. */
export function statusForCode(code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}

const CODE_BY_STATUS: Record<number, ApiErrorBody['error']['code']> = {
  400: 'invalid_input',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'too_large',
  415: 'invalid_input',
};

/** How an error is answered: status, stable code, client-facing message, extra headers. */
export interface ErrorAnswer {
  status: number;
  code: ApiErrorBody['error']['code'];
  message: string;
  headers: Record<string, string>;
}

function httpErrorFields(err: unknown): { status: number; expose: boolean; message: string } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined || !Number.isInteger(status)) return undefined;
  return { status, expose: e.expose === true, message: typeof e.message === 'string' ? e.message : '' };
}

/** Classifies any thrown value; unknown errors become a generic 500. */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (isKickswarmError(err)) {
    const headers: Record<string, string> = {};
    if (err instanceof BusyError) headers['Retry-After'] = String(err.retryAfterSeconds);
    const status = statusForCode(err.code);
    const message = err.code === 'internal' ? 'internal error' : err.message;
    // The client may still be sending a body nobody reads: end the connection.
    if (err.code === 'too_large') headers.Connection = 'close';
    return { status, code: err.code, message, headers };
  }
  const h = httpErrorFields(err);
  if (h && h.status >= 400 && h.status < 500) {
    return {
      status: h.status,
      code: CODE_BY_STATUS[h.status] ?? 'http_error',
      message: h.expose && h.message ? h.message : `HTTP ${h.status}`,
      headers: h.status === 413 ? { Connection: 'close' } : {},
    };
  }
  return { status: 500, code: 'internal', message: 'internal error', headers: {} };
}

type BodyStyle = 'json' | 'xml' | 'text';

/** The body style for a path, matched as the router matches routes (case-insensitively). */
function styleFor(rawPath: string): BodyStyle {
  const path = rawPath.toLowerCase();
  if (path === '/api' || path.startsWith('/api/')) return 'json';
  if (path.startsWith('/pxe/') || path.startsWith('/frisbee/')) return 'xml';
  return 'text';
}

function writeAnswer(ctx: Context, a: ErrorAnswer): void {
  ctx.status = a.status;
  for (const [k, v] of Object.entries(a.headers)) ctx.set(k, v);
  switch (styleFor(ctx.path)) {
    case 'json': {
      const body: ApiErrorBody = { error: { code: a.code, message: a.message } };
      ctx.body = body;
      break;
    }
    case 'xml':
      ctx.type = 'application/xml; charset=utf-8';
      ctx.body = `<?xml version='1.0'?>\n<ERROR code="${xmlEscape(a.code)}">${xmlEscape(a.message)}</ERROR>\n`;
      break;
    default:
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${a.message}\n`;
  }
}

/**
 * Catches everything thrown below it and answers it. `template_error` is
 * logged at error with its file:line message, `unavailable` at warn, other
 * 500s at error with the stack; 4xx and busy answers only appear in the
 * request log. Unmatched routes become a 404 in the family's shape.
 */
export function errorMiddleware(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        writeAnswer(ctx, { status: 404, code: 'not_found', message: `no route ${ctx.method} ${ctx.path.slice(0, 200)}`, headers: {} });
      }
    } catch (err) {
      const a = errorAnswer(err);
      if (a.status >= 500 && a.code === 'template_error') {
        log.error({ code: a.code, url: redactSession(ctx.url.slice(0, 512)), err: (err as Error).message }, 'template error');
      } else if (a.code === 'unavailable') {
        log.warn({ url: redactSession(ctx.url.slice(0, 512)), err: (err as Error).message }, 'unavailable');
      } else if (a.status >= 500 && a.code !== 'busy') {
        log.error({ url: redactSession(ctx.url.slice(0, 512)), err }, 'internal error');
      }
      writeAnswer(ctx, a);
    }
  };
}
