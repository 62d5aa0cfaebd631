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
 * back from the file. The pool holds at most `poolBytes` of piece data, and
 * more only while pieces in it are still being written. With `direct` (a
 * scratch region of the install target) pieces are written around the page
 * cache where the file system allows (openTarget: whole blocks directly,
 * without a copy when the piece is in a PieceMemory buffer), so the node's
 * RAM does not fill with dirty pages of pieces it has already verified; reads
 * go through the page cache.
 *
 * With a PieceMemory (the node's receive path assembles pieces in its
 * buffers), a piece in one of its buffers is acknowledged as soon as it is in
 * the pool (it is served from memory until written), every read of it gets a
 * copy (a reader may keep what it gets for as long as it likes), and the buffer
 * goes back to the memory once it is written and out of the pool. `readInto`
 * copies into the caller's buffer without a new one. A write that fails keeps
 * its piece in memory and fails every later put (webtorrent then ends the
 * torrent, as for any write error).
 */
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFully } from '../../protocol/file-io.js';
import type { PieceMemory } from '../../protocol/piece-memory.js';
import { openTarget, type TargetStats } from '../../protocol/target-file.js';

type Done = (err: Error | null) => void;

type Got = (err: Error | null, buf?: Uint8Array) => void;

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
  /** Write pieces around the page cache where the file system allows it (openTarget): for a scratch region of the install target. */
  direct?: boolean;
}

/** The open file: reads through `fh`, writes through `write`; `stats` for a `direct` one. */
interface Opened {
  fh: FileHandle;
  write(buf: Buffer, pos: number): Promise<void>;
  close(): Promise<void>;
  stats?: TargetStats;
}

export const DEFAULT_POOL_BYTES = 32 << 20;

/** A piece the store holds in memory: in the pool, being written, or both. */
interface Kept {
  buf: Uint8Array;
  /** The buffer is the memory's: reads get copies, and it goes back once written and out of the pool. */
  mine: boolean;
  writing: boolean;
}

export class FileChunkStore {
  private handle: Promise<Opened> | undefined;
  private opened: Opened | undefined;
  private closed = false;
  private failed: Error | undefined;
  private readonly pool = new Map<number, Kept>();
  private pooled = 0;
  private readonly base: number;
  private readonly poolBytes: number;

  constructor(
    private readonly where: PieceFile,
    readonly chunkLength: number,
    private readonly length: number,
    private readonly memory?: PieceMemory,
  ) {
    this.base = where.base ?? 0;
    this.poolBytes = where.poolBytes ?? DEFAULT_POOL_BYTES;
  }

  get(index: number, opts: { offset?: number; length?: number } | null, cb: Got): void {
    if (typeof opts === 'function') {
      cb = opts as Got;
      opts = null;
    }
    const r = this.range(index, opts);
    if (typeof r === 'string') return void queueMicrotask(() => cb(new Error(r)));
    const hit = this.pool.get(index);
    if (hit) {
      const part = r.offset === 0 && r.len === hit.buf.length ? hit.buf : hit.buf.subarray(r.offset, r.offset + r.len);
      const out = hit.mine ? Buffer.from(part) : part;
      return void queueMicrotask(() => cb(null, out));
    }
    this.readFile(index, r.offset, r.len, Buffer.allocUnsafe(r.len), 0, cb);
  }

  /** Bytes `offset..offset+length-1` of piece `index` copied into `into` at `at` (from memory, or read from the file straight into it). */
  readInto(index: number, offset: number, length: number, into: Uint8Array, at: number, cb: (err: Error | null) => void): void {
    const r = this.range(index, { offset, length });
    if (typeof r === 'string') return void queueMicrotask(() => cb(new Error(r)));
    if (at < 0 || at + r.len > into.length) return void queueMicrotask(() => cb(new Error(`no room for ${r.len} bytes at ${at}`)));
    const hit = this.pool.get(index);
    if (hit) {
      into.set(hit.buf.subarray(r.offset, r.offset + r.len), at);
      return void queueMicrotask(() => cb(null));
    }
    this.readFile(index, r.offset, r.len, into, at, (err) => cb(err));
  }

  put(index: number, buf: Uint8Array, cb?: Done): void {
    const chunkStart = index * this.chunkLength;
    const chunkLen = Math.min(this.chunkLength, this.length - chunkStart);
    if (this.closed) return void queueMicrotask(() => cb?.(new Error('store is closed')));
    if (this.failed) return void queueMicrotask(() => cb?.(this.failed!));
    if (chunkLen <= 0 || buf.length !== chunkLen) {
      return void queueMicrotask(() => cb?.(new Error(`chunk ${index} must be ${chunkLen} bytes, got ${buf.length}`)));
    }
    const kept: Kept = { buf, mine: !!this.memory?.owns(buf), writing: true };
    this.remember(index, kept);
    if (kept.mine) queueMicrotask(() => cb?.(null));
    this.io((f) => f.write(Buffer.from(buf.buffer, buf.byteOffset, buf.length), this.base + chunkStart)).then(
      () => {
        kept.writing = false;
        this.trim();
        this.letGo(index, kept);
        if (!kept.mine) cb?.(null);
      },
      (err: Error) => {
        if (kept.mine) return void (this.failed ??= err);
        kept.writing = false;
        if (this.pool.get(index) === kept) this.unpool(index, kept);
        cb?.(err);
      },
    );
  }

  /** How a `direct` store's writes went (bytes around and through the page cache), once it has opened its file. */
  get writeStats(): TargetStats | undefined {
    return this.opened?.stats;
  }

  close(cb?: Done): void {
    this.closed = true;
    this.pool.clear();
    this.pooled = 0;
    const h = this.handle;
    this.handle = undefined;
    if (!h) return void queueMicrotask(() => cb?.(null));
    h.then((f) => f.close()).then(
      () => cb?.(null),
      () => cb?.(null),
    );
  }

  destroy(cb?: Done): void {
    const what = this.where.onDestroy;
    const opened = !!this.handle;
    const cut = typeof what === 'object' && opened ? this.handle!.then(async ({ fh }) => ((await fh.stat()).isFile() ? fh.truncate(what.truncateTo) : undefined)) : Promise.resolve();
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

  /** The piece-relative range a read asks for, or why it cannot be read. */
  private range(index: number, opts: { offset?: number; length?: number } | null): { offset: number; len: number } | string {
    const chunkStart = index * this.chunkLength;
    const chunkLen = Math.min(this.chunkLength, this.length - chunkStart);
    const offset = opts?.offset ?? 0;
    const len = opts?.length ?? chunkLen - offset;
    if (this.closed) return 'store is closed';
    if (index < 0 || chunkLen <= 0 || offset < 0 || len < 0 || offset + len > chunkLen) return `read outside the image: chunk ${index} +${offset} len ${len}`;
    return { offset, len };
  }

  private readFile(index: number, offset: number, len: number, into: Uint8Array, at: number, cb: Got): void {
    const from = this.base + index * this.chunkLength + offset;
    this.io(async ({ fh }) => {
      let done = 0;
      while (done < len) {
        const { bytesRead } = await fh.read(into, at + done, len - done, from + done);
        if (bytesRead === 0) throw new Error(`chunk ${index} is not stored`);
        done += bytesRead;
      }
      return into.subarray(at, at + len);
    }).then(
      (buf) => cb(null, buf),
      (err: Error) => cb(err),
    );
  }

  private remember(index: number, kept: Kept): void {
    const old = this.pool.get(index);
    if (old) this.unpool(index, old);
    if (kept.buf.length > this.poolBytes) return;
    this.pool.set(index, kept);
    this.pooled += kept.buf.length;
    this.trim();
  }

  /** Evicts the oldest pieces, in order, until the pool is within its size or the next one is still being written. */
  private trim(): void {
    for (const [i, k] of this.pool) {
      // Oldest first, and never past a piece still being written: a newer piece (the one a reader is likeliest to want) waits for it.
      if (this.pooled <= this.poolBytes || k.writing) break;
      this.unpool(i, k);
    }
  }

  private unpool(index: number, kept: Kept): void {
    this.pool.delete(index);
    this.pooled -= kept.buf.length;
    this.letGo(index, kept);
  }

  /** A buffer of the memory's that is written and out of the pool goes back to it. */
  private letGo(index: number, kept: Kept): void {
    if (kept.mine && !kept.writing && this.pool.get(index) !== kept && !this.closed) this.memory!.give(kept.buf);
  }

  private async io<T>(fn: (f: Opened) => Promise<T>): Promise<T> {
    this.handle ??= this.open().then((f) => (this.opened = f));
    return fn(await this.handle);
  }

  private async open(): Promise<Opened> {
    const { file, onDestroy, direct } = this.where;
    await mkdir(dirname(file), { recursive: true });
    if (direct) return openTarget(file, 0, { direct: true });
    const fh = await open(file, onDestroy === 'delete' ? 'w+' : 'r+');
    return { fh, write: (buf, pos) => writeFully(fh, buf, pos), close: () => fh.close() };
  }
}

/**
 * A store class bound to `where`, in the constructor shape webtorrent's `store`
 * option wants; `memory` is the PieceMemory its pieces' buffers go back to, and
 * `onCreate` learns of the instance webtorrent makes (for readInto).
 */
export function fileStore(where: PieceFile, opts: { memory?: PieceMemory; onCreate?: (store: FileChunkStore) => void } = {}): FileStoreFactory {
  return class extends FileChunkStore {
    constructor(chunkLength: number, o: { length: number }) {
      super(where, chunkLength, o.length, opts.memory);
      opts.onCreate?.(this);
    }
  };
}
