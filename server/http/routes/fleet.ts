/**
 * The fleet API the dashboard reads (and scripts may):
 *
 *   GET /api/v1/fleet            FleetSnapshot (gzip when accepted)
 *   GET /api/v1/fleet/stream     Server-Sent Events: `snapshot` first, then one
 *                                `delta` about once a second (gzip when accepted)
 *   GET /api/v1/nodes/:name/log  the installer's log lines (`?limit=N`, default 1000)
 *
 * Streams are bounded: at most `maxStreams` at once (503 beyond), and a
 * listener that does not read (4 MiB waiting) is cut off.
 */
import { PassThrough, type Writable } from 'node:stream';
import zlib from 'node:zlib';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Context } from 'koa';
import { BusyError, InvalidInputError } from '../../../protocol/errors.js';
import { API_PREFIX, API_NODES_PATH } from '../../../protocol/api.js';
import { parseNodeName } from '../../../protocol/node.js';
import type { FleetFeed } from '../../cluster/fleet.js';
import type { Inventory } from '../../inventory/store.js';
import type { Logger } from '../../log.js';
import { queryValue } from '../body.js';

export const API_FLEET_PATH = `${API_PREFIX}/fleet`;
export const API_FLEET_STREAM_PATH = `${API_PREFIX}/fleet/stream`;

function acceptsGzip(ctx: Context): boolean {
  return /\bgzip\b/.test(ctx.get('accept-encoding'));
}

/** Answers `value` as JSON, gzipped when the client accepts it and it is worth it. */
export function sendJson(ctx: Context, value: unknown): void {
  const text = JSON.stringify(value);
  ctx.type = 'application/json; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.vary('Accept-Encoding');
  if (text.length > 1400 && acceptsGzip(ctx)) {
    ctx.set('Content-Encoding', 'gzip');
    ctx.body = zlib.gzipSync(text, { level: 6 });
  } else {
    ctx.body = text;
  }
}

export interface FleetRouteDeps {
  /** Who may call these routes (router-level, run once a route matched; ../api-auth.ts). */
  auth?: Middleware;
  inventory: Inventory;
  feed: FleetFeed;
  log: Logger;
  /** Most event streams open at once (default 64). */
  maxStreams?: number;
}

const MAX_BUFFERED = 4 * 1024 * 1024;

export function fleetRoutes(deps: FleetRouteDeps): Router {
  const router = new Router();
  if (deps.auth) router.use(deps.auth);
  const maxStreams = deps.maxStreams ?? 64;
  let open = 0;

  router.get(API_FLEET_PATH, (ctx) => sendJson(ctx, deps.feed.snapshot()));

  router.get(API_FLEET_STREAM_PATH, (ctx) => {
    if (open >= maxStreams) throw new BusyError(`too many fleet streams open (${maxStreams})`, 5);
    open++;
    const gzip = acceptsGzip(ctx);
    const body = new PassThrough();
    const gz = gzip ? zlib.createGzip({ level: 6 }) : undefined;
    const out: Writable = gz ?? body;
    if (gz) gz.pipe(body);
    ctx.req.socket.setNoDelay(true);
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Accel-Buffering', 'no');
    if (gz) ctx.set('Content-Encoding', 'gzip');
    ctx.type = 'text/event-stream; charset=utf-8';
    ctx.status = 200;
    ctx.body = body;

    let unsubscribe = (): void => undefined;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      open--;
      unsubscribe();
      out.end();
    };
    const send = (event: string, data: unknown): void => {
      if (ended) return;
      if (body.writableLength + (gz?.writableLength ?? 0) > MAX_BUFFERED) {
        deps.log.warn('fleet stream listener too slow; closing it');
        end();
        return;
      }
      out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      gz?.flush(zlib.constants.Z_SYNC_FLUSH);
    };
    ctx.req.once('close', end);
    ctx.res.once('close', end);
    out.write('retry: 2000\n\n');
    const snap = deps.feed.snapshot();
    send('snapshot', snap);
    unsubscribe = deps.feed.subscribe((d) => send('delta', d), snap);
  });

  router.get(`${API_NODES_PATH}/:name/log`, (ctx) => {
    const name = parseNodeName(ctx.params.name ?? '');
    deps.inventory.requireNode(name);
    const raw = queryValue(ctx, 'limit');
    if (raw !== undefined && !/^\d{1,5}$/.test(raw)) throw new InvalidInputError('limit must be a whole number');
    sendJson(ctx, { node: name, lines: deps.inventory.installLog(name, raw === undefined ? undefined : Math.max(1, Number(raw))) });
  });

  return router;
}
