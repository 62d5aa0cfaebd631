/**
 * The frontend's Koa app: node-facing CGI routes (no token), OMF routes (admin
 * or OMF token), the `/api/v1` admin API (admin token) and whatever routers the
 * caller adds. Middleware order: request log, error mapping, routers. Who may
 * use a route is decided by its router once the route matched (./auth.ts).
 */
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { MethodNotAllowedError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';
import { errorMiddleware } from './errors.js';
import { BusyGauge } from './limiter.js';
import { apiRouter } from './routes/api.js';
import { kickstartRoute } from './routes/kickstart.js';
import { omfRouter } from './routes/omf.js';
import { setPxebootRouter } from './routes/setpxeboot.js';
import { redactSession } from './session.js';
import type { HttpDeps } from './types.js';

/**
 * Requests every node repeats many times during an install (tracker
 * announces, image and boot-file ranges, progress reports, scrapes): logged at
 * debug so the info log stays one line per thing an admin cares about.
 */
const ROUTINE = [/^\/announce$/, /^\/scrape$/, /^\/install\/images\//, /^\/install\/boot\//, /^\/install\/sbin\/public\/report\.cgi$/, /^\/metrics$/];

export function isRoutine(path: string): boolean {
  return ROUTINE.some((r) => r.test(path));
}

/** One structured line per request: method, url, status, ms, remote ip (routine ones at debug, 5xx at warn). */
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
        url: ctx.url.length > 512 ? `${redactSession(ctx.url.slice(0, 512))}...` : redactSession(ctx.url),
        status: ctx.status,
        ms: Math.round(ms * 10) / 10,
        ip: remote.startsWith('::ffff:') ? remote.slice(7) : remote,
      };
      onResponse?.(ctx.path, ctx.status);
      if (ctx.status >= 500) log.warn(line, 'request');
      else if (isRoutine(ctx.path)) log.debug(line, 'request');
      else log.info(line, 'request');
    }
  };
}

function methodNotAllowed(): Error {
  return new MethodNotAllowedError();
}

/** Builds the app from its dependencies; nothing listens until HttpServer.start(). */
export function createApp(deps: HttpDeps): Koa {
  const log = deps.log.child({ subsystem: 'http' });
  const app = new Koa({ proxy: false });
  app.on('error', (err: Error) => log.warn({ err: err.message }, 'http error outside a request'));

  const { maxInFlight, maxLoopDelayMs } = deps.config.kickstart;
  const gauge = new BusyGauge({ maxInFlight, maxLoopDelayMs });
  const routers: Router[] = [kickstartRoute({ ...deps, log }, gauge), setPxebootRouter({ ...deps, log }), omfRouter({ ...deps, log }), apiRouter({ ...deps, log }), ...(deps.extraRouters ?? [])];

  app.use(requestLog(log, deps.onResponse));
  app.use(errorMiddleware(log));
  for (const r of routers) {
    app.use(r.routes());
    app.use(r.allowedMethods({ throw: true, methodNotAllowed, notImplemented: methodNotAllowed }));
  }
  return app;
}
