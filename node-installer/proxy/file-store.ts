/**
 * The piece store of one image's torrent on the node (the abstract-chunk-store
 * shape webtorrent wants), over a region of one file:
 * - a cache file the proxy owns (`kickswarm-install proxy`), deleted on destroy;
 * - or, during an install, a scratch region of the install target past the
 *   image's raw bytes (the node's only disk), cut off again on destroy when
 *   the target is a regular file.
 *
 * Every verified piece is written to the file (so the node can serve it to
 * peers for as long as it stays in the swarm) and kept in a bounded pool of
 * recent pieces: reads of a piece that verified recently (the installer's chunk
 * writer, the localhost HTTP side, peers asking for what this node just
 * announced) are answered from memory without a copy; older pieces are read
 * back from the file. The pool holds at most `poolBytes` of piece data.
 */
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

type Done = (err: Error | null) => void;

export type FileStoreFactory = new (chunkLength: number, opts: { length: number }) => FileChunkStore;

/** Where a torrent's pieces live and what happens to them at the end. */
export interface PieceFile {
  file: string;
  /** Offset of piece 0 in the file (default 0). */
  base?: number;
  /** On destroy: delete the file (a cache file), or cut a regular file back to `truncateTo` bytes (a target), or leave it. */
  onDestroy: 'delete' | { truncateTo: number } | 'keep';
  /** Bytes of recent pieces kept in memory (default 32 MiB). */
  poolBytes?: number;
}

export const DEFAULT_POOL_BYTES = 32 << 20;

export class FileChunkStore {
  private handle: Promise<FileHandle> | undefined;
  private closed = false;
  private readonly pool = new Map<number, Uint8Array>();
  private pooled = 0;
  private readonly base: number;
  private readonly poolBytes: number;

  constructor(
    private readonly where: PieceFile,
    readonly chunkLength: number,
    private readonly length: number,
  ) {
    this.base = where.base ?? 0;
    this.poolBytes = where.poolBytes ?? DEFAULT_POOL_BYTES;
  }

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
    const hit = this.pool.get(index);
    if (hit) {
      const part = offset === 0 && len === hit.length ? hit : hit.subarray(offset, offset + len);
      return void queueMicrotask(() => cb(null, part));
    }
    this.io(async (fh) => {
      const buf = Buffer.allocUnsafe(len);
      let done = 0;
      while (done < len) {
        const { bytesRead } = await fh.read(buf, done, len - done, this.base + chunkStart + offset + done);
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
    this.remember(index, buf);
    this.io(async (fh) => {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await fh.write(buf, done, buf.length - done, this.base + chunkStart + done);
        done += bytesWritten;
      }
    }).then(
      () => cb?.(null),
      (err: Error) => {
        this.forget(index);
        cb?.(err);
      },
    );
  }

  close(cb?: Done): void {
    this.closed = true;
    this.pool.clear();
    this.pooled = 0;
    const h = this.handle;
    this.handle = undefined;
    if (!h) return void queueMicrotask(() => cb?.(null));
    h.then((fh) => fh.close()).then(
      () => cb?.(null),
      () => cb?.(null),
    );
  }

  destroy(cb?: Done): void {
    const what = this.where.onDestroy;
    const opened = !!this.handle;
    const cut = typeof what === 'object' && opened ? this.handle!.then(async (fh) => ((await fh.stat()).isFile() ? fh.truncate(what.truncateTo) : undefined)) : Promise.resolve();
    cut
      .catch(() => undefined)
      .then(() => {
        this.close(() => {
          if (what !== 'delete') return cb?.(null);
          rm(this.where.file, { force: true }).then(
            () => cb?.(null),
            (err: Error) => cb?.(err),
          );
        });
      });
  }

  private remember(index: number, buf: Uint8Array): void {
    if (buf.length > this.poolBytes) return;
    this.forget(index);
    this.pool.set(index, buf);
    this.pooled += buf.length;
    for (const [i, b] of this.pool) {
      if (this.pooled <= this.poolBytes) break;
      this.pool.delete(i);
      this.pooled -= b.length;
    }
  }

  private forget(index: number): void {
    const old = this.pool.get(index);
    if (!old) return;
    this.pool.delete(index);
    this.pooled -= old.length;
  }

  private async io<T>(fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    this.handle ??= mkdir(dirname(this.where.file), { recursive: true }).then(() => open(this.where.file, this.where.onDestroy === 'delete' ? 'w+' : 'r+'));
    return fn(await this.handle);
  }
}

/** A store class bound to `where`, in the constructor shape webtorrent's `store` option wants. */
export function fileStore(where: PieceFile): FileStoreFactory {
  return class extends FileChunkStore {
    constructor(chunkLength: number, opts: { length: number }) {
      super(where, chunkLength, opts.length);
    }
  };
}
