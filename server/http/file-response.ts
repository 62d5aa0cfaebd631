/**
 * One file as an HTTP response, for routes that stream files from disk (images,
 * boot files): `ETag` (strong, the caller's), `Last-Modified`, `Accept-Ranges`;
 * `If-None-Match` matching -> 304; a single satisfiable `Range` (several are
 * coalesced into one span, RFC 9110 allows it) -> 206 with `Content-Range`;
 * none satisfiable -> 416 with `Content-Range: bytes *\/SIZE`; a malformed
 * Range or a stale `If-Range` -> the whole file with 200. HEAD gets the headers
 * only. The file handle is the response's from then on: it is closed when the
 * body ends, or at once when no body is sent.
 */
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline, Transform } from 'node:stream';
import type { Context } from 'koa';

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

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

export interface FileToSend {
  fh: FileHandle;
  /** The strong ETag, from the open file's stat. */
  etag: (st: Stats) => string;
  /** Names the file in the 416 text ("image", "file"). */
  what: string;
  /** Called with the byte count of each piece of the body as it leaves. */
  onBytes?: (n: number) => void;
  /** Called with the range about to be streamed (for a debug log line). */
  onStream?: (start: number, end: number) => void;
}

/** Sends `f.fh` as the response to a GET or HEAD (see the module comment). */
export async function sendFile(ctx: Context, f: FileToSend): Promise<void> {
  let handedOver = false;
  try {
    const st = await f.fh.stat();
    const size = st.size;
    const etag = f.etag(st);
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
      ctx.body = `range not satisfiable (${f.what} is ${size} bytes)\n`;
      return;
    }
    ctx.status = range ? 206 : 200;
    ctx.type = 'application/octet-stream';
    if (size === 0) {
      ctx.body = '';
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const length = end - start + 1;
    if (range) ctx.set('Content-Range', `bytes ${start}-${end}/${size}`);
    if (ctx.method === 'HEAD') {
      ctx.set('Content-Length', String(length));
      return;
    }
    f.onStream?.(start, end);
    const src = f.fh.createReadStream({ start, end, highWaterMark: 1 << 20 });
    handedOver = true;
    const onBytes = f.onBytes;
    if (onBytes) {
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          onBytes(chunk.length);
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
    if (!handedOver) await f.fh.close();
  }
}
