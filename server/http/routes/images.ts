/**
 * `GET|HEAD /install/images/NAME.torrent`: the image's torrent (application/x-bittorrent).
 * `GET|HEAD /install/images/NAME`: the `.ksimg` bytes, streamed from disk. This
 * is also every torrent's BEP 19 web seed, which fetches piece spans with
 * single `Range: bytes=a-b` requests.
 *
 * Ranges: one satisfiable range -> 206 + Content-Range; several -> coalesced
 * into one 206 spanning from the first start to the last end (RFC 9110 allows
 * coalescing; no multipart bodies); none satisfiable -> 416 with Content-Range
 * giving the size;
 * a malformed Range or a stale `If-Range` -> the whole file with 200.
 * `ETag` is strong, derived from the raw SHA-256 and the stored size;
 * `If-None-Match` -> 304. Bad names -> InvalidInputError (400), unknown -> NotFoundError (404).
 * Who may download is `access` (router middleware, run once a route matched;
 * the frontend passes "registered nodes and the admin token" unless
 * `images.public`); without it, anyone.
 *
 * Versions: `NAME@N` is exactly version N; `NAME` is whatever version is
 * current when the request arrives (resolved once per request, so one
 * response never mixes versions; the ETag differs per version). Torrents name
 * the exact version's URL as their web seed.
 */
import fs from 'node:fs';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { NotFoundError } from '../../../protocol/errors.js';
import type { ImageStore } from '../../images/store.js';
import type { Logger } from '../../log.js';
import { sendFile } from '../file-response.js';

export { parseRange } from '../file-response.js';

export interface ImageRouteDeps {
  store: ImageStore;
  /** The torrent for an image as served to this frontend's nodes (see retargetTorrent). */
  torrentFor: (name: string) => Promise<Buffer>;
  /** Router middleware deciding who may download (see the module comment). */
  access?: Middleware;
  /** Called as image bytes leave (for metrics). */
  onBytesSent?: (name: string, n: number) => void;
  /**
   * Decides whether this requester may have image `name` (bytes or torrent);
   * throws to refuse. Absent: everyone may (the frontend passes the boot
   * decision's install session check).
   */
  authorize?: (ctx: Context, name: string) => void;
  log: Logger;
}

export const IMAGE_ROUTE_PREFIX = '/install/images';

/** Strong ETag of an image file. */
export function imageEtag(sha256: string, storedSize: number): string {
  return `"${sha256.slice(0, 32)}-${storedSize.toString(16)}"`;
}

async function serveTorrent(ctx: Context, deps: ImageRouteDeps, name: string): Promise<void> {
  const torrent = await deps.torrentFor(deps.store.get(name).ref);
  ctx.set('Cache-Control', 'no-cache');
  ctx.type = 'application/x-bittorrent';
  ctx.body = torrent;
}

async function serveImage(ctx: Context, deps: ImageRouteDeps, requested: string): Promise<void> {
  const meta = deps.store.get(requested);
  const name = meta.ref;
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(deps.store.path(name), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no image named ${requested}`);
    throw err;
  }
  const onBytes = deps.onBytesSent;
  await sendFile(ctx, {
    fh,
    etag: (st) => imageEtag(meta.sha256, st.size),
    what: 'image',
    onBytes: onBytes && ((n) => onBytes(name, n)),
    onStream: (start, end) => deps.log.debug({ image: name, start, end, ip: ctx.ip }, 'image bytes'),
  });
}

/** The image and torrent routes; mount with the central error middleware in front. */
export function imageRoutes(deps: ImageRouteDeps): Router {
  const router = new Router();
  if (deps.access) router.use(deps.access);
  router.get(`${IMAGE_ROUTE_PREFIX}/:file`, async (ctx) => {
    const file = String(ctx.params.file);
    const name = file.endsWith('.torrent') ? file.slice(0, -'.torrent'.length) : file;
    deps.authorize?.(ctx, name);
    if (file.endsWith('.torrent')) {
      await serveTorrent(ctx, deps, name);
    } else {
      await serveImage(ctx, deps, file);
    }
  });
  return router;
}
