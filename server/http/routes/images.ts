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
import { pipeline, Transform } from 'node:stream';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { NotFoundError } from '../../../protocol/errors.js';
import type { ImageStore } from '../../images/store.js';
import type { Logger } from '../../log.js';

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

/** A byte range, inclusive ends as in HTTP. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Interprets a Range header for a representation of `size` bytes:
 * `undefined` = serve the whole thing (absent or malformed header),
 * `'unsatisfiable'` = 416, else the single (coalesced) range to send.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return undefined;
  const ranges: ByteRange[] = [];
  for (const part of m[1]!.split(',')) {
    const spec = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(part);
    if (!spec || (spec[1] === '' && spec[2] === '')) return undefined;
    let start: number;
    let end: number;
    if (spec[1] === '') {
      const suffix = Number(spec[2]);
      if (suffix === 0) continue;
      start = Math.max(0, size - suffix);
      end = size - 1;
    } else {
      start = Number(spec[1]);
      end = spec[2] === '' ? size - 1 : Math.min(Number(spec[2]), size - 1);
      if (spec[2] !== '' && Number(spec[2]) < start) return undefined;
    }
    if (start < size && start <= end) ranges.push({ start, end });
  }
  if (ranges.length === 0) return 'unsatisfiable';
  return { start: Math.min(...ranges.map((r) => r.start)), end: Math.max(...ranges.map((r) => r.end)) };
}

/** Strong ETag of an image file. */
export function imageEtag(sha256: string, storedSize: number): string {
  return `"${sha256.slice(0, 32)}-${storedSize.toString(16)}"`;
}

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
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
  let handedOver = false;
  try {
    const st = await fh.stat();
    const size = st.size;
    const etag = imageEtag(meta.sha256, size);
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('ETag', etag);
    ctx.set('Last-Modified', st.mtime.toUTCString());
    ctx.set('Cache-Control', 'no-cache');
    const inm = ctx.get('If-None-Match');
    if (inm && etagMatches(inm, etag)) {
      ctx.status = 304;
      return;
    }
    const ifRange = ctx.get('If-Range');
    const range = ifRange && ifRange.trim() !== etag ? undefined : parseRange(ctx.get('Range') || undefined, size);
    if (range === 'unsatisfiable') {
      ctx.status = 416;
      ctx.set('Content-Range', `bytes */${size}`);
      ctx.type = 'text/plain';
      ctx.body = `range not satisfiable (image is ${size} bytes)\n`;
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const length = end - start + 1;
    ctx.status = range ? 206 : 200;
    if (range) ctx.set('Content-Range', `bytes ${start}-${end}/${size}`);
    ctx.type = 'application/octet-stream';
    if (ctx.method === 'HEAD') {
      ctx.set('Content-Length', String(length));
      return;
    }
    deps.log.debug({ image: name, start, end, ip: ctx.ip }, 'image bytes');
    const src = fh.createReadStream({ start, end, highWaterMark: 1 << 20 });
    handedOver = true;
    const onBytes = deps.onBytesSent;
    if (onBytes) {
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          onBytes(name, chunk.length);
          cb(null, chunk);
        },
      });
      pipeline(src, counter, () => {});
      ctx.body = counter;
    } else {
      ctx.body = src;
    }
    ctx.length = length;
  } finally {
    if (!handedOver) await fh.close();
  }
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
