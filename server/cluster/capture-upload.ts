/**
 * Receiving a captured disk image: the upload body (a chunked image made on
 * the node) is streamed to a temporary file next to the image store, then
 * handed to `ImageStore.add`, which verifies every chunk and stores it
 * atomically with its torrent. Whatever happens, the temporary file is gone
 * afterwards and the store holds either the whole image or nothing of it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CorruptImageError, InvalidInputError, TooLargeError } from '../../protocol/errors.js';
import { IMAGE_MAGIC, isImageMagic } from '../../protocol/image-format.js';
import type { ImageMeta, ImageStore } from '../images/store.js';

/** 64 GiB. */
export const DEFAULT_MAX_CAPTURE_BYTES = 64 * 1024 ** 3;
/** An upload that sends nothing for this long is broken off. */
export const DEFAULT_CAPTURE_IDLE_MS = 120_000;

/** The client went away, stalled or the connection failed mid-body (code `invalid_input`). */
export class UploadBrokenError extends InvalidInputError {
  constructor(
    message: string,
    readonly bytes: number,
  ) {
    super(message, { bytes });
  }
}

export interface ReceiveOptions {
  maxBytes: number;
  idleTimeoutMs: number;
}

/**
 * Writes `src` into `file` (which must not exist) and resolves with the byte
 * count. Rejects, with `file` removed, when the body is larger than
 * `maxBytes` (TooLargeError), does not start with the image magic (CorruptImageError),
 * breaks off or sends nothing for `idleTimeoutMs` (UploadBrokenError), or
 * the disk fails. `src` is paused, never destroyed, on a refusal, so an
 * answer can still be sent; a stalled `src` is destroyed.
 */
export async function receiveToFile(src: Readable, file: string, opts: ReceiveOptions): Promise<number> {
  const fh = await fs.promises.open(file, 'wx', 0o600);
  let size = 0;
  let head = Buffer.alloc(0);
  let ok = false;
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        src.off('data', onData);
        src.off('end', onEnd);
        src.off('error', onError);
        src.off('close', onClose);
        src.pause();
        if (err) reject(err);
        else resolve();
      };
      const arm = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          finish(new UploadBrokenError(`upload sent nothing for ${Math.round(opts.idleTimeoutMs / 1000)} s`, size));
          src.destroy();
        }, opts.idleTimeoutMs);
      };
      const onData = (chunk: Buffer | string): void => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += b.length;
        if (size > opts.maxBytes) return finish(new TooLargeError(`upload larger than ${opts.maxBytes} bytes`, { limit: opts.maxBytes }));
        if (head.length < IMAGE_MAGIC.length) {
          head = Buffer.concat([head, b.subarray(0, IMAGE_MAGIC.length - head.length)]);
          if (head.length === IMAGE_MAGIC.length && !isImageMagic(head)) {
            return finish(new CorruptImageError('upload is not a kickswarm chunked image (bad magic)'));
          }
        }
        src.pause();
        fh.write(b).then(
          () => {
            if (settled) return;
            arm();
            src.resume();
          },
          (err: Error) => finish(err),
        );
      };
      const onEnd = (): void => {
        if (size < IMAGE_MAGIC.length) return finish(new CorruptImageError(`upload of ${size} bytes is not a kickswarm chunked image`));
        finish();
      };
      const onError = (err: Error): void => finish(new UploadBrokenError(`upload broken off after ${size} bytes (${err.message})`, size));
      const onClose = (): void => finish(new UploadBrokenError(`upload broken off after ${size} bytes`, size));
      src.on('data', onData);
      src.on('end', onEnd);
      src.on('error', onError);
      src.on('close', onClose);
      arm();
      src.resume();
    });
    await fh.sync();
    ok = true;
    return size;
  } finally {
    await fh.close().catch(() => undefined);
    if (!ok) await fs.promises.rm(file, { force: true });
  }
}

/**
 * A temporary upload file in the store's folder, named so that the store's
 * clean-up of dead adds (`<name>.*.tmp-<pid>-...`) also removes it if this
 * process dies mid-upload.
 */
export function uploadTempPath(store: ImageStore, name: string): string {
  return path.join(store.dir, `${name}.upload.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
}

/**
 * Receives `src` as image `name`: streams it to a temporary file in the
 * store's folder, moves it into `store` (full verification; ConflictError when
 * the name exists) and removes the temporary file in every case.
 */
export async function storeUploadedImage(src: Readable, store: ImageStore, name: string, opts: ReceiveOptions): Promise<ImageMeta & { uploadedBytes: number }> {
  await fs.promises.mkdir(store.dir, { recursive: true });
  const tmp = uploadTempPath(store, name);
  try {
    const uploadedBytes = await receiveToFile(src, tmp, opts);
    const meta = await store.add(tmp, name, { move: true, newOnly: true });
    return { ...meta, uploadedBytes };
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}
