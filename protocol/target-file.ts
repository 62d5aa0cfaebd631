/**
 * An install target (block device or regular file) opened for image writes
 * that bypass the page cache where they can.
 *
 * A buffered write costs a node a copy into the page cache, a fresh page per
 * 4 KiB and the kernel's writeback, about as much CPU as inflating the bytes;
 * and on a node whose only memory is RAM those pages compete with the
 * installer. A direct write (O_DIRECT) moves the bytes from the caller's
 * memory to the device.
 *
 * Contract:
 * - `openTarget(path, rawSize)` opens the target (created when absent; a
 *   regular file shorter than `rawSize` is extended to it) with a second,
 *   direct descriptor where the OS and file system allow one;
 * - `write(buf, pos)` writes all of `buf` at `pos`. The whole 4 KiB blocks
 *   it covers go through the direct descriptor, copied first into a
 *   page-aligned buffer of this module's (unless `buf` is one, see
 *   `alignedBuffer`); the partial blocks at either end go through the page
 *   cache. A direct write the kernel refuses (EINVAL: a device with larger
 *   blocks, a file system without direct I/O) turns direct writes off for
 *   this target, and that write and all later ones go through the page cache;
 * - `writeZeros(pos, length)` writes zeros the same way, without a copy;
 * - `sync()` makes everything written durable (both descriptors);
 *   `close()` is idempotent;
 * - `fh` is the buffered descriptor (reads, stat); `stats` counts the bytes
 *   each way went and says why direct writes are off, when they are.
 * Writes may run concurrently on distinct ranges; each holds one aligned
 * buffer of at most 1 MiB while it runs, and at most 8 idle ones are kept per
 * process.
 */
import fs from 'node:fs';
import { writeFully } from './file-io.js';
import { zeroBuffer } from './image-layout.js';

/** The alignment of every direct write: offset, length and memory address. */
export const DIRECT_BLOCK = 4096;
const BOUNCE_BYTES = 1 << 20;
const WASM_PAGE = 65536;
const SPARE_KEPT = 8;

/** The part of the WebAssembly API used here (Node.js's type declarations leave its value to the DOM lib). */
interface WasmMemoryApi {
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
}
const wasm = (globalThis as { WebAssembly?: WasmMemoryApi }).WebAssembly;

/** Memory allocated here (page-aligned: WebAssembly memories start on a page). */
const alignedMemory = new WeakSet<ArrayBufferLike>();
const spare: Buffer[] = [];
/** Aligned zeros for writeZeros (never written into); made by the first open that may write directly. */
let zeros: Buffer | undefined;

/**
 * A zero-filled buffer of `size` bytes that starts on a page boundary, so
 * direct writes can use it as it is (no copy); undefined where this Node.js
 * has no WebAssembly (`--jitless`). Each one reserves address space of its
 * own: for a few long-lived buffers, not one per chunk.
 */
export function alignedBuffer(size: number): Buffer | undefined {
  if (!wasm) return undefined;
  try {
    const mem = new wasm.Memory({ initial: Math.max(1, Math.ceil(size / WASM_PAGE)) });
    alignedMemory.add(mem.buffer);
    return Buffer.from(mem.buffer, 0, size);
  } catch {
    return undefined;
  }
}

/**
 * `count` buffers of `size` bytes each, carved out of one page-aligned memory
 * (each starts on a block boundary, so direct writes take them without a
 * copy); plain buffers where there is no WebAssembly. For a writer's few
 * long-lived buffers: one reservation of address space for all of them.
 */
export function alignedBuffers(count: number, size: number): Buffer[] {
  const stride = Math.ceil(size / DIRECT_BLOCK) * DIRECT_BLOCK;
  const arena = count > 0 ? alignedBuffer(stride * count) : undefined;
  return Array.from({ length: count }, (_, i) => (arena ? arena.subarray(i * stride, i * stride + size) : Buffer.allocUnsafe(size)));
}

/** True when a direct write can take `buf` as it is (memory of alignedBuffer's, at a block boundary). */
export function isAligned(buf: Buffer): boolean {
  return alignedMemory.has(buf.buffer) && buf.byteOffset % DIRECT_BLOCK === 0;
}

export interface TargetStats {
  /** Bytes written through the direct descriptor. */
  directBytes: number;
  /** Bytes written through the page cache. */
  bufferedBytes: number;
  /** Why direct writes are off (undefined while they are on). */
  directOff?: string;
}

const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | undefined)?.code === code;

/** Opens an install target as the module doc says. */
export function openTarget(path: string, rawSize: number, o: { direct?: boolean } = {}): Promise<TargetFile> {
  return TargetFile.open(path, rawSize, o);
}

export class TargetFile {
  readonly stats: TargetStats;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly fh: fs.promises.FileHandle,
    private direct: fs.promises.FileHandle | undefined,
    directOff: string | undefined,
  ) {
    this.stats = { directBytes: 0, bufferedBytes: 0, directOff };
  }

  /** Opens `path` as the module doc says. */
  static async open(path: string, rawSize: number, o: { direct?: boolean } = {}): Promise<TargetFile> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(path, 'r+');
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      fh = await fs.promises.open(path, 'w+');
    }
    let direct: fs.promises.FileHandle | undefined;
    let off: string | undefined = o.direct === false ? 'turned off by the caller' : undefined;
    try {
      const st = await fh.stat();
      if (st.isFile() && st.size < rawSize) await fh.truncate(rawSize);
      if (!off && !fs.constants.O_DIRECT) off = 'this OS has no O_DIRECT';
      if (!off && !(zeros ??= alignedBuffer(BOUNCE_BYTES))) off = 'this Node.js has no WebAssembly memory for aligned buffers';
      if (!off) {
        try {
          direct = await fs.promises.open(path, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
        } catch (err) {
          off = `the file system refused O_DIRECT (${(err as Error).message})`;
        }
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    return new TargetFile(path, fh, direct, off);
  }

  /** True while whole blocks go through the direct descriptor. */
  get directIo(): boolean {
    return this.direct !== undefined;
  }

  /** Writes all of `buf` at `pos` (see the module doc). */
  async write(buf: Buffer, pos: number): Promise<void> {
    await this.put(buf.length, pos, (at, n) => buf.subarray(at, at + n), true);
  }

  /** Writes `length` zero bytes at `pos`. */
  async writeZeros(pos: number, length: number): Promise<void> {
    const z = this.direct ? zeros : undefined;
    await this.put(length, pos, (_at, n) => (z ? z.subarray(0, n) : zeroBuffer(n)), !z);
  }

  async sync(): Promise<void> {
    await this.direct?.sync();
    await this.fh.sync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const d = this.direct;
    this.direct = undefined;
    try {
      await d?.close();
    } finally {
      await this.fh.close();
    }
  }

  /**
   * Writes `length` bytes at `pos`; `bytes(at, n)` gives bytes `at..at+n-1`
   * of them; with `copy`, bytes not at an aligned address are copied into a
   * spare aligned buffer before a direct write.
   */
  private async put(length: number, pos: number, bytes: (at: number, n: number) => Buffer, copy: boolean): Promise<void> {
    let at = 0;
    const buffered = async (n: number) => {
      for (let k = 0; k < n; k += BOUNCE_BYTES) await writeFully(this.fh, bytes(at + k, Math.min(BOUNCE_BYTES, n - k)), pos + at + k);
      this.stats.bufferedBytes += n;
      at += n;
    };
    const head = Math.min(length, (DIRECT_BLOCK - (pos % DIRECT_BLOCK)) % DIRECT_BLOCK);
    if (head > 0) await buffered(head);
    while (this.direct && length - at >= DIRECT_BLOCK) {
      const n = Math.min(BOUNCE_BYTES, Math.floor((length - at) / DIRECT_BLOCK) * DIRECT_BLOCK);
      const src = bytes(at, n);
      const bounce = copy && !isAligned(src);
      const own = bounce ? (spare.pop() ?? alignedBuffer(BOUNCE_BYTES)) : undefined;
      if (bounce && !own) break;
      if (own) src.copy(own);
      try {
        const done = await this.writeDirect(own ? own.subarray(0, n) : src, pos + at);
        this.stats.directBytes += done;
        at += done;
        if (done < n) break;
      } finally {
        if (own && spare.length < SPARE_KEPT) spare.push(own);
      }
    }
    if (at < length) await buffered(length - at);
  }

  /** Bytes of `buf` written directly at `pos`: all of them, or fewer when the kernel stops short or refuses (direct writes are then off). */
  private async writeDirect(buf: Buffer, pos: number): Promise<number> {
    let done = 0;
    try {
      while (done < buf.length && this.direct) {
        const { bytesWritten } = await this.direct.write(buf, done, buf.length - done, pos + done);
        done += bytesWritten;
        if (bytesWritten === 0 || done % DIRECT_BLOCK !== 0) break;
      }
    } catch (err) {
      if (!isErrno(err, 'EINVAL')) throw err;
      this.stats.directOff = `the kernel refused a direct write (${(err as Error).message})`;
      const d = this.direct;
      this.direct = undefined;
      await d?.close().catch(() => undefined);
    }
    return done;
  }
}
