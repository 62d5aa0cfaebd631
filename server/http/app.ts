/**
 * The frontend's Koa app: node-facing CGI routes (no token), OMF routes, the
 * `/api/v1` admin API (bearer token) and whatever routers the caller adds.
 * Middleware order: kickstart.cgi load gauge, request log, error mapping, API
 * auth, routers.
 */
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { API_PREFIX, KICKSTART_PATH } from '../../protocol/api.js';
import type { Logger } from '../log.js';
import { tokenMatches } from './auth.js';
import { apiAuth } from './api-auth.js';
import { errorMiddleware } from './errors.js';
import { BusyGauge } from './limiter.js';
import { apiRouter } from './routes/api.js';
import { kickstartRoute } from './routes/kickstart.js';
import { omfRouter } from './routes/omf.js';
import { setPxebootRouter } from './routes/setpxeboot.js';
import type { HttpDeps } from './types.js';

/** One structured line per request: method, url, status, ms, remote ip. */
export function requestLog(log: Logger, onResponse?: (path: string, status: number) => void): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const remote = ctx.req.socket.remoteAddress ?? '';
      const line = {
        method: ctx.method,
        url: ctx.url.length > 512 ? `${ctx.url.slice(0, 512)}...` : ctx.url,
        status: ctx.status,
        ms: Math.round(ms * 10) / 10,
        ip: remote.startsWith('::ffff:') ? remote.slice(7) : remote,
      };
      onResponse?.(ctx.path, ctx.status);
      if (ctx.status >= 500) log.warn(line, 'request');
      else log.info(line, 'request');
    }
  };
}

/**
 * First in the chain: counts kickstart.cgi requests as open from their
 * arrival until the response is written or the connection closes.
 */
export function busyGaugeMiddleware(gauge: BusyGauge): Middleware {
  return async (ctx, next) => {
    if (ctx.path === KICKSTART_PATH) {
      const done = gauge.enter();
      ctx.res.once('finish', done);
      ctx.res.once('close', done);
    }
    await next();
  };
}

function methodNotAllowed(): Error {
  return Object.assign(new Error('method not allowed'), { status: 405, expose: true });
}

function isApiPath(path: string): boolean {
  return path === API_PREFIX || path.startsWith(`${API_PREFIX}/`) || path === '/api' || path.startsWith('/api/');
}

/** Builds the app from its dependencies; nothing listens until HttpServer.start(). */
export function createApp(deps: HttpDeps): Koa {
  const log = deps.log.child({ subsystem: 'http' });
  const app = new Koa({ proxy: false });
  app.on('error', (err: Error) => log.warn({ err: err.message }, 'http error outside a request'));

  const auth = apiAuth({
    roleForToken: deps.roleForToken ?? ((t) => (tokenMatches(deps.apiToken, t) ? 'admin' : undefined)),
    sessions: deps.sessions,
  });
  const { maxInFlight, maxLoopDelayMs } = deps.config.kickstart;
  const gauge = new BusyGauge({ maxInFlight, maxLoopDelayMs });
  const routers: Router[] = [
    kickstartRoute({ ...deps, log }, gauge),
    setPxebootRouter({ ...deps, log }),
    omfRouter({ ...deps, log }),
    apiRouter({ ...deps, log }),
    ...(deps.extraRouters ?? []),
  ];

  app.use(busyGaugeMiddleware(gauge));
  app.use(requestLog(log, deps.onResponse));
  app.use(errorMiddleware(log));
  app.use(async (ctx, next) => {
    if (isApiPath(ctx.path)) return auth(ctx, next);
    await next();
  });
  for (const r of routers) {
    app.use(r.routes());
    app.use(r.allowedMethods({ throw: true, methodNotAllowed, notImplemented: methodNotAllowed }));
  }
  return app;
}
