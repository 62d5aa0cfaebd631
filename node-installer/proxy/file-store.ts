/**
 * A chunk store (the abstract-chunk-store shape webtorrent wants) over one file
 * the proxy owns: pieces are written where they belong as they verify, read
 * back for local clients and other peers, and the file is deleted on destroy.
 */
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

type Done = (err: Error | null) => void;

export type FileStoreFactory = new (chunkLength: number, opts: { length: number }) => FileChunkStore;

export class FileChunkStore {
  private handle: Promise<FileHandle> | undefined;
  private closed = false;

  constructor(
    private readonly file: string,
    readonly chunkLength: number,
    private readonly length: number,
  ) {}

  get(index: number, opts: { offset?: number; length?: number } | null, cb: (err: Error | null, buf?: Uint8Array) => void): void {
    if (typeof opts === 'function') {
      cb = opts as typeof cb;
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
    this.io(async (fh) => {
      const buf = Buffer.allocUnsafe(len);
      let done = 0;
      while (done < len) {
        const { bytesRead } = await fh.read(buf, done, len - done, chunkStart + offset + done);
        if (bytesRead === 0) throw new Error(`chunk ${index} is not stored`);
        done += bytesRead;
      }
      return buf;
    }).then(
      (buf) => cb(null, buf),
      (err: Error) => cb(err),
    );
  }

  put(index: number, buf: Uint8Array, cb?: Done): void {
    const chunkStart = index * this.chunkLength;
    const chunkLen = Math.min(this.chunkLength, this.length - chunkStart);
    if (this.closed) return void queueMicrotask(() => cb?.(new Error('store is closed')));
    if (chunkLen <= 0 || buf.length !== chunkLen) {
      return void queueMicrotask(() => cb?.(new Error(`chunk ${index} must be ${chunkLen} bytes, got ${buf.length}`)));
    }
    this.io(async (fh) => {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await fh.write(buf, done, buf.length - done, chunkStart + done);
        done += bytesWritten;
      }
    }).then(
      () => cb?.(null),
      (err: Error) => cb?.(err),
    );
  }

  close(cb?: Done): void {
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    if (!h) return void queueMicrotask(() => cb?.(null));
    h.then((fh) => fh.close()).then(
      () => cb?.(null),
      () => cb?.(null),
    );
  }

  destroy(cb?: Done): void {
    this.close(() => {
      rm(this.file, { force: true }).then(
        () => cb?.(null),
        (err: Error) => cb?.(err),
      );
    });
  }

  private async io<T>(fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    this.handle ??= mkdir(dirname(this.file), { recursive: true }).then(() => open(this.file, 'w+'));
    return fn(await this.handle);
  }
}

/** A store class bound to `file`, in the constructor shape webtorrent's `store` option wants. */
export function fileStore(file: string): FileStoreFactory {
  return class extends FileChunkStore {
    constructor(chunkLength: number, opts: { length: number }) {
      super(file, chunkLength, opts.length);
    }
  };
}
