/**
 * A read-only chunk store over one existing file: what the seeder hands webtorrent
 * so an image is seeded in place, never copied, never opened for writing, and
 * never deleted when its torrent is removed.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { ChunkStore, ChunkStoreFactory } from '../../protocol/webtorrent.js';

type Callback<T> = (err: Error | null, value?: T) => void;

class ReadOnlyFileStore implements ChunkStore {
  private handle: Promise<FileHandle> | undefined;
  private closed = false;

  constructor(
    private readonly file: string,
    readonly chunkLength: number,
    private readonly length: number,
  ) {}

  get(index: number, opts: { offset?: number; length?: number } | null, cb: Callback<Uint8Array>): void {
    if (typeof opts === 'function') {
      cb = opts as Callback<Uint8Array>;
      opts = null;
    }
    const chunkStart = index * this.chunkLength;
    const chunkLen = Math.min(this.chunkLength, this.length - chunkStart);
    const offset = opts?.offset ?? 0;
    const len = opts?.length ?? chunkLen - offset;
    if (this.closed) return void queueMicrotask(() => cb(new Error('store is closed')));
    if (index < 0 || chunkLen <= 0 || offset < 0 || len < 0 || offset + len > chunkLen) {
      return void queueMicrotask(() => cb(new Error(`read outside the image: chunk ${index} +${offset} len ${len}`)));
    }
    this.read(chunkStart + offset, len).then(
      (buf) => cb(null, buf),
      (err: Error) => cb(err),
    );
  }

  put(_index: number, _buf: Uint8Array, cb?: (err: Error | null) => void): void {
    queueMicrotask(() => cb?.(new Error('seeded images are read-only')));
  }

  close(cb?: (err?: Error | null) => void): void {
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    if (!h) return void queueMicrotask(() => cb?.(null));
    h.then((fh) => fh.close()).then(
      () => cb?.(null),
      () => cb?.(null),
    );
  }

  destroy(cb?: (err?: Error | null) => void): void {
    this.close(cb);
  }

  private async read(position: number, length: number): Promise<Uint8Array> {
    this.handle ??= open(this.file, 'r');
    const fh = await this.handle;
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, position + done);
      if (bytesRead === 0) throw new Error(`${this.file} is shorter than its torrent`);
      done += bytesRead;
    }
    return buf;
  }
}

/** A store class bound to `file`, in the constructor shape webtorrent's `store` option wants. */
export function readOnlyFileStore(file: string): ChunkStoreFactory {
  return class extends ReadOnlyFileStore {
    constructor(chunkLength: number, opts: { length: number }) {
      super(file, chunkLength, opts.length);
    }
  };
}
