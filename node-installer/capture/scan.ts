/**
 * Pass 1 of a capture: reads the whole source once, in chunk order, and
 * works out everything the image's header and index must say before any
 * chunk data is sent: which chunks are all zero (not stored), each stored
 * chunk's codec, stored length and raw SHA-256, and the SHA-256 of the whole
 * raw image. Chunks are compressed only to learn their stored length; the
 * compressed bytes are dropped at once.
 *
 * Memory: `concurrency` chunks in flight (raw + compressed) plus the index,
 * 56 bytes per stored chunk (1.1 MB for 20 GiB of data at 1 MiB chunks),
 * which the format needs in full before the first data byte.
 */
import crypto from 'node:crypto';
import { encodeChunkAsync, encodeIndexEntry, HEADER_SIZE, IMAGE_VERSION, INDEX_ENTRY_SIZE, isAllZero, type Codec, type ImageHeader } from '../../protocol/image-format.js';
import type { CaptureSource } from './source.js';

/** What pass 1 learned: the header and index to send, byte for byte. */
export interface CapturePlan {
  header: ImageHeader;
  /** The encoded index: `header.storedChunks` entries of 56 bytes, offsets final. */
  index: Buffer;
  /** Deflate level the stored lengths were measured with; pass 2 must use the same. */
  level: number;
  /** Bytes of the upload: header + index + chunk data. */
  uploadSize: number;
}

export interface ScanOptions {
  chunkSize: number;
  level: number;
  concurrency: number;
  signal?: AbortSignal;
  /** Raw bytes of the source covered so far. */
  onProgress?: (rawDone: number) => void;
}

/**
 * Runs `work(0) .. work(count - 1)` with at most `concurrency` in flight and
 * yields their results in order. A failure is thrown when its turn comes;
 * work already started then finishes unobserved.
 */
export async function* inOrder<T>(count: number, concurrency: number, work: (i: number) => Promise<T>, signal?: AbortSignal): AsyncGenerator<T> {
  const queue: Promise<T>[] = [];
  let next = 0;
  const fill = (): void => {
    while (next < count && queue.length < concurrency) {
      const p = work(next++);
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  fill();
  while (queue.length) {
    signal?.throwIfAborted();
    const r = await queue.shift()!;
    fill();
    yield r;
  }
}

/** A byte buffer that grows by doubling; `bytes()` is a view of what was appended. */
class Growable {
  private buf = Buffer.alloc(INDEX_ENTRY_SIZE * 1024);
  length = 0;
  reserve(n: number): { buf: Buffer<ArrayBuffer>; at: number } {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    const at = this.length;
    this.length += n;
    return { buf: this.buf, at };
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

interface Scanned {
  raw: Buffer;
  enc?: { codec: Codec; storedLength: number; sha256: Buffer };
}

/** Pass 1: reads `src` once and returns the plan of the image. */
export async function scanSource(src: CaptureSource, o: ScanOptions): Promise<CapturePlan> {
  const { chunkSize, level } = o;
  const rawSize = src.size;
  const chunkCount = Math.ceil(rawSize / chunkSize);
  const whole = crypto.createHash('sha256');
  const index = new Growable();
  let dataLength = 0;
  let storedChunks = 0;
  let rawDone = 0;

  const work = async (n: number): Promise<Scanned> => {
    const raw = await src.read(n * chunkSize, Math.min(chunkSize, rawSize - n * chunkSize));
    if (isAllZero(raw)) return { raw };
    const e = await encodeChunkAsync(raw, level);
    return { raw, enc: { codec: e.codec, storedLength: e.stored.length, sha256: e.sha256 } };
  };

  let n = 0;
  for await (const c of inOrder(chunkCount, o.concurrency, work, o.signal)) {
    whole.update(c.raw);
    if (c.enc) {
      const { buf, at } = index.reserve(INDEX_ENTRY_SIZE);
      // Offsets are relative to the data area here; the data offset is added once the index length is known.
      encodeIndexEntry({ chunkNumber: n, codec: c.enc.codec, offset: dataLength, storedLength: c.enc.storedLength, rawLength: c.raw.length, sha256: c.enc.sha256 }, buf, at);
      storedChunks++;
      dataLength += c.enc.storedLength;
    }
    rawDone += c.raw.length;
    n++;
    o.onProgress?.(rawDone);
  }
  o.signal?.throwIfAborted();

  const dataOffset = HEADER_SIZE + storedChunks * INDEX_ENTRY_SIZE;
  const bytes = index.bytes();
  for (let at = 0; at < bytes.length; at += INDEX_ENTRY_SIZE) {
    bytes.writeBigUInt64LE(bytes.readBigUInt64LE(at + 8) + BigInt(dataOffset), at + 8);
  }
  const header: ImageHeader = {
    version: IMAGE_VERSION,
    chunkSize,
    rawSize,
    chunkCount,
    storedChunks,
    dataOffset,
    dataLength,
    sha256: whole.digest('hex'),
    indexSha256: crypto.createHash('sha256').update(bytes).digest('hex'),
  };
  return { header, index: bytes, level, uploadSize: dataOffset + dataLength };
}
