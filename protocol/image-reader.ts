/**
 * Streaming, verifying reader of chunked images. Memory does not grow with the
 * image: a file is read by position (index in batches, twice: once to verify
 * it before any chunk is handed out, once to yield), a stream sequentially
 * (its index, at most MAX_INDEX_BYTES and 56 bytes per stored chunk, is held).
 * Every yielded chunk has been inflated and checked against its SHA-256; any
 * fault is a CorruptImageError naming the chunk.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { CorruptImageError } from './errors.js';
import { decodeIndexEntry, HEADER_SIZE, INDEX_ENTRY_SIZE, IndexChecker, parseHeader, type ImageChunk, type ImageHeader, type IndexEntry } from './image-layout.js';
import { decodeChunkAsync } from './image-chunk.js';
import { alignedBuffers } from './target-file.js';

/**
 * Bytes taken in exact counts, in order (a stream's bytes, or a source that
 * reads into a buffer of its own and copies out of it). What it hands out is
 * the caller's to keep: a copy, or a view of memory the source never reuses.
 */
export interface ExactByteSource {
  /**
   * Exactly `n` bytes, fewer only at the end; put in `into` when it is large
   * enough, else in a new buffer. The caller may keep what it gets. One call
   * at a time.
   */
  readExact(n: number, into?: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

/** A path to an image file, or its bytes as a stream (HTTP body, swarm stream, stdin) or an ExactByteSource. */
export type ImageSource = string | Readable | AsyncIterable<Uint8Array> | ExactByteSource;

export interface OpenedImage {
  header: ImageHeader;
  /** Yields every stored chunk in chunk order, verified. Call once. */
  chunks(): AsyncGenerator<ImageChunk>;
  close(): Promise<void>;
}

export interface ReadImageOptions {
  signal?: AbortSignal;
  /** Chunks inflated ahead in parallel (default 4). */
  readAhead?: number;
  /**
   * Inflate into readAhead + `held` buffers used in turn, and put stored bytes
   * that must be copied or read into as many more (page-aligned, so a target
   * writes them directly): asking for the next chunk may then overwrite the
   * `data` of any chunk but the last `held` yielded (for a consumer that is
   * done with each chunk soon after).
   */
  reuseBuffers?: boolean;
  /** With reuseBuffers: the chunks the consumer may still hold when it asks for the next one (default 1). */
  held?: number;
}

const ENTRY_BATCH = 4096;

interface ByteReader {
  header: ImageHeader;
  entries(): AsyncGenerator<IndexEntry>;
  /**
   * The stored bytes of `e`; entries are asked for in index order. With
   * `into` (large enough), bytes that must be copied or read are put there.
   */
  stored(e: IndexEntry, into?: Buffer): Promise<Buffer>;
  /** Throws unless the source ends exactly after the last chunk. */
  end(): Promise<void>;
  close(): Promise<void>;
}

/** `len` bytes at `pos` (fewer at end of file), read into `into` when it is large enough. */
async function readAt(fh: fs.promises.FileHandle, pos: number, len: number, into?: Buffer): Promise<Buffer> {
  const buf = into && into.length >= len ? into.subarray(0, len) : Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === len ? buf : buf.subarray(0, got);
}

async function* fileEntries(fh: fs.promises.FileHandle, h: ImageHeader): AsyncGenerator<IndexEntry> {
  for (let i = 0; i < h.storedChunks; i += ENTRY_BATCH) {
    const n = Math.min(ENTRY_BATCH, h.storedChunks - i);
    const buf = await readAt(fh, HEADER_SIZE + i * INDEX_ENTRY_SIZE, n * INDEX_ENTRY_SIZE);
    if (buf.length !== n * INDEX_ENTRY_SIZE) throw new CorruptImageError('truncated index');
    for (let k = 0; k < n; k++) yield decodeIndexEntry(buf, k * INDEX_ENTRY_SIZE);
  }
}

async function openFile(path: string): Promise<ByteReader> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const header = parseHeader(await readAt(fh, 0, HEADER_SIZE));
    if (HEADER_SIZE + header.storedChunks * INDEX_ENTRY_SIZE > size) throw new CorruptImageError('index extends past end of file');
    // Verify the whole index (hash, order, contiguity, EOF) before handing out a chunk.
    const hash = crypto.createHash('sha256');
    const checker = new IndexChecker(header);
    for (let i = 0; i < header.storedChunks; i += ENTRY_BATCH) {
      const n = Math.min(ENTRY_BATCH, header.storedChunks - i);
      hash.update(await readAt(fh, HEADER_SIZE + i * INDEX_ENTRY_SIZE, n * INDEX_ENTRY_SIZE));
    }
    if (hash.digest('hex') !== header.indexSha256) throw new CorruptImageError('index checksum mismatch');
    for await (const e of fileEntries(fh, header)) {
      checker.check(e);
      if (e.offset + e.storedLength > size) throw new CorruptImageError(`truncated: data ends past end of file (${size} bytes)`, e.chunkNumber);
    }
    checker.finish();
    if (size !== header.dataOffset + header.dataLength) {
      throw new CorruptImageError(`file is ${size} bytes, header says ${header.dataOffset + header.dataLength}`);
    }
    return {
      header,
      entries: () => fileEntries(fh, header),
      async stored(e, into) {
        const buf = await readAt(fh, e.offset, e.storedLength, into);
        if (buf.length !== e.storedLength) throw new CorruptImageError('truncated chunk data', e.chunkNumber);
        return buf;
      },
      end: async () => {},
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Pulls exact byte counts out of a sequential stream: bytes inside one of the
 * stream's buffers are handed on as a view of it, bytes across several are
 * copied once into a buffer of their own.
 */
class StreamBytes implements ExactByteSource {
  private bufs: Buffer[] = [];
  private have = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}
  /** Exactly `n` bytes, or fewer only at end of stream; bytes across buffers are copied into `into` when it is large enough. */
  async readExact(n: number, into?: Buffer): Promise<Buffer> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length) {
        this.bufs.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length));
        this.have += r.value.length;
      }
    }
    const take = Math.min(n, this.have);
    const first = this.bufs[0];
    if (!first || take === 0) return Buffer.alloc(0);
    this.have -= take;
    if (first.length >= take) {
      if (first.length === take) this.bufs.shift();
      else this.bufs[0] = first.subarray(take);
      return first.subarray(0, take);
    }
    const out = into && into.length >= take ? into.subarray(0, take) : Buffer.allocUnsafe(take);
    let at = 0;
    let used = 0;
    while (at < take) {
      const b = this.bufs[used]!;
      const k = Math.min(b.length, take - at);
      b.copy(out, at, 0, k);
      at += k;
      if (k === b.length) used++;
      else this.bufs[used] = b.subarray(k);
    }
    this.bufs.splice(0, used);
    return out;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function isExact(source: ImageSource): source is ExactByteSource {
  return typeof source === 'object' && typeof (source as Partial<ExactByteSource>).readExact === 'function';
}

async function openStream(source: AsyncIterable<Uint8Array> | ExactByteSource): Promise<ByteReader> {
  const s = isExact(source) ? source : new StreamBytes(source[Symbol.asyncIterator]());
  const read = (n: number, into?: Buffer) => s.readExact(n, into);
  try {
    const header = parseHeader(await read(HEADER_SIZE));
    const indexLen = header.storedChunks * INDEX_ENTRY_SIZE;
    const index = await read(indexLen);
    if (index.length !== indexLen) throw new CorruptImageError('truncated index');
    if (crypto.createHash('sha256').update(index).digest('hex') !== header.indexSha256) {
      throw new CorruptImageError('index checksum mismatch');
    }
    const entries: IndexEntry[] = [];
    const checker = new IndexChecker(header);
    for (let at = 0; at < indexLen; at += INDEX_ENTRY_SIZE) entries.push(checker.check(decodeIndexEntry(index, at)));
    checker.finish();
    for (let left = header.dataOffset - HEADER_SIZE - indexLen; left > 0;) {
      const pad = await read(Math.min(left, 1 << 20));
      if (pad.length === 0) throw new CorruptImageError('truncated padding before chunk data');
      left -= pad.length;
    }
    return {
      header,
      entries: async function* () {
        yield* entries;
      },
      async stored(e, into) {
        const buf = await read(e.storedLength, into);
        if (buf.length !== e.storedLength) throw new CorruptImageError(`truncated: stream ended inside chunk data`, e.chunkNumber);
        return buf;
      },
      async end() {
        if ((await read(1)).length !== 0) throw new CorruptImageError('trailing bytes after the last chunk');
      },
      close: () => s.close(),
    };
  } catch (err) {
    await s.close();
    throw err;
  }
}

/**
 * Opens an image and verifies header and index. With a path, the file size,
 * index checksum and every entry are checked here, so a truncated or damaged
 * file fails before its first chunk is yielded.
 */
export async function openImage(source: ImageSource, opts: ReadImageOptions = {}): Promise<OpenedImage> {
  const r = typeof source === 'string' ? await openFile(source) : await openStream(source as AsyncIterable<Uint8Array> | ExactByteSource);
  const ahead = Math.max(1, opts.readAhead ?? 4);
  return {
    header: r.header,
    async *chunks() {
      const queue: Promise<ImageChunk>[] = [];
      const cs = r.header.chunkSize;
      // Chunks in flight: the `ahead` queued and the ones the consumer holds;
      // each has a slot for its stored bytes and one for its raw bytes.
      const slots = opts.reuseBuffers ? ahead + Math.max(1, opts.held ?? 1) : 0;
      const ring = alignedBuffers(2 * slots, cs + 1);
      let k = 0;
      for await (const e of r.entries()) {
        opts.signal?.throwIfAborted();
        const slot = slots ? k++ % slots : -1;
        const stored = await r.stored(e, ring[2 * slot]);
        const p = decodeChunkAsync(e, stored, ring[2 * slot + 1]).then((data) => ({ chunkNumber: e.chunkNumber, diskOffset: e.chunkNumber * cs, data }));
        p.catch(() => {});
        queue.push(p);
        if (queue.length >= ahead) yield await queue.shift()!;
      }
      while (queue.length) yield await queue.shift()!;
      await r.end();
    },
    close: () => r.close(),
  };
}

/** Opens, yields every verified stored chunk in order, closes. Zero chunks are not yielded. */
export async function* readImage(source: ImageSource, opts: ReadImageOptions = {}): AsyncGenerator<ImageChunk> {
  const img = await openImage(source, opts);
  try {
    yield* img.chunks();
  } finally {
    await img.close();
  }
}
