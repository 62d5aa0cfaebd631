/**
 * Opens an image as a byte stream over HTTP: from the node's localhost swarm
 * proxy (method `torrent`) or straight from the frontend (method `http`). The
 * stream is the chunked image file, in order; its chunks are verified by the
 * image reader as they are written, so nothing unverified reaches the disk.
 */
import type { Readable } from 'node:stream';
import { type Dispatcher, request } from 'undici';
import { NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { IMAGES_PREFIX } from '../../protocol/api.js';

export interface OpenedStream {
  body: Readable;
  /** Content-Length, when the server sent one. */
  length?: number;
}

/** GET `<base>/install/images/<name>`; 404 is NotFoundError, other failures UnavailableError. */
export async function openImageStream(base: string, name: string, dispatcher?: Dispatcher): Promise<OpenedStream> {
  const url = `${base.replace(/\/+$/, '')}${IMAGES_PREFIX}${encodeURIComponent(name)}`;
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
