/**
 * Reads an image over HTTP: from the node's localhost swarm proxy (method
 * `torrent`) or straight from the frontend (method `http`), either as one
 * in-order stream of the chunked image file or as byte ranges of it. Callers
 * verify what they get (chunk SHA-256s), so nothing unverified reaches the disk.
 */
import type { Readable } from 'node:stream';
import { type Dispatcher, request } from 'undici';
import { NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { imagePath } from '../../protocol/api.js';

export interface OpenedStream {
  body: Readable;
  /** Content-Length, when the server sent one. */
  length?: number;
}

/** GET `<base>/install/images/<name>`; 404 is NotFoundError, other failures UnavailableError. */
export async function openImageStream(base: string, name: string, dispatcher?: Dispatcher): Promise<OpenedStream> {
  const url = `${base.replace(/\/+$/, '')}${imagePath(name)}`;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { dispatcher, headersTimeout: 120_000, bodyTimeout: 120_000 });
  } catch (e) {
    throw new UnavailableError(`cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (res.statusCode === 404) {
    await res.body.dump();
    throw new NotFoundError(`image ${name} is not on the frontend (${url})`);
  }
  if (res.statusCode !== 200) {
    const text = (await res.body.text().catch(() => '')).trim().slice(0, 200);
    throw new UnavailableError(`GET ${url}: HTTP ${res.statusCode} ${text}`);
  }
  const len = Number(res.headers['content-length']);
  return { body: res.body, length: Number.isFinite(len) ? len : undefined };
}

/**
 * Bytes [start, end) of the image file (a Range request). A 206 must carry
 * exactly those bytes; a 200 (a server without Range) is accepted only when
 * start is 0 and is cut off at `end`. 404 is NotFoundError, anything else
 * (other statuses, short bodies, network errors, timeouts) UnavailableError.
 */
export async function fetchImageRange(base: string, name: string, start: number, end: number, opts: { dispatcher?: Dispatcher; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Buffer> {
  const url = `${base.replace(/\/+$/, '')}${imagePath(name)}`;
  const want = end - start;
  if (!(Number.isSafeInteger(start) && start >= 0 && want > 0)) throw new RangeError(`bad range ${start}-${end}`);
  const timeout = opts.timeoutMs ?? 120_000;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      dispatcher: opts.dispatcher,
      signal: opts.signal,
      headers: { range: `bytes=${start}-${end - 1}` },
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  } catch (e) {
    opts.signal?.throwIfAborted();
    throw new UnavailableError(`cannot fetch bytes ${start}-${end - 1} of ${url}: ${(e as Error).message}`);
  }
  if (res.statusCode === 404) {
    await res.body.dump();
    throw new NotFoundError(`image ${name} is not on the frontend (${url})`);
  }
  if (res.statusCode !== 206 && !(res.statusCode === 200 && start === 0)) {
    const text = (await res.body.text().catch(() => '')).trim().slice(0, 200);
    throw new UnavailableError(`GET ${url} bytes ${start}-${end - 1}: HTTP ${res.statusCode} ${text}`);
  }
  const out = Buffer.allocUnsafe(want);
  let got = 0;
  try {
    for await (const c of res.body) {
      const b = c as Buffer;
      const n = Math.min(b.length, want - got);
      b.copy(out, got, 0, n);
      got += n;
      if (got >= want) break;
    }
  } catch (e) {
    opts.signal?.throwIfAborted();
    throw new UnavailableError(`GET ${url} bytes ${start}-${end - 1}: ${(e as Error).message}`);
  } finally {
    res.body.destroy();
  }
  if (got < want) throw new UnavailableError(`GET ${url} bytes ${start}-${end - 1}: got ${got} of ${want} bytes`);
  return out;
}
