/**
 * Converts a raw disk image into the chunked format, streaming with memory
 * bounded by (concurrency x chunk size), whatever the image size.
 *
 * Raw size known (a regular file, or `rawSize` given): the index area is
 * reserved for every chunk (56 B each), chunk data is written once straight
 * after it, entries are written into their slots, and the unused part of the
 * reserve stays as zero padding. Raw size unknown (a device or a stream): data
 * is spooled to `<out>.spool`, then header, index and data are assembled.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { InvalidInputError } from './errors.js';
import { checkChunkSize, DEFAULT_CHUNK_SIZE, encodeHeader, encodeIndexEntry, HEADER_SIZE, IMAGE_VERSION, INDEX_ENTRY_SIZE, isAllZero, type EncodedChunk, type ImageHeader } from './image-layout.js';
import { encodeChunkAsync } from './image-chunk.js';
import { writeFully } from './file-io.js';

export interface WriteImageOptions {
  /** Power of two, 64 KiB..16 MiB; default 1 MiB. */
  chunkSize?: number;
  /** Deflate level 1..9 (default 6). */
  level?: number;
  /** Size of a stream source when known (avoids the spool file). */
  rawSize?: number;
  /** Chunks compressed in parallel (default: available parallelism, at least 2). */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface WriteProgress {
  rawDone: number;
  /** Undefined while unknown (stream source). */
  rawSize?: number;
  chunksDone: number;
  storedChunks: number;
  storedBytes: number;
}

export interface ImageSummary {
  rawSize: number;
  /** Size of the image file. */
  storedSize: number;
  chunkSize: number;
  chunkCount: number;
  storedChunks: number;
  /** SHA-256 (hex) of the raw image. */
  sha256: string;
}

/** Cuts a byte stream into `size`-byte buffers (the last may be shorter). */
async function* cut(src: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let cur = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const piece of src) {
    let b = Buffer.from(piece.buffer, piece.byteOffset, piece.length);
    while (b.length) {
      const n = Math.min(b.length, size - fill);
      b.copy(cur, fill, 0, n);
      fill += n;
      b = b.subarray(n);
      if (fill === size) {
        yield cur;
        cur = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill) yield cur.subarray(0, fill);
}

async function openSource(source: string | Readable | AsyncIterable<Uint8Array>, rawSize?: number) {
  if (typeof source !== 'string') return { stream: source as AsyncIterable<Uint8Array>, rawSize };
  const st = await fs.promises.stat(source);
  if (st.isDirectory()) throw new InvalidInputError(`${source} is a directory, not a disk image`);
  const known = st.isFile() ? st.size : rawSize;
  const opts = known !== undefined && st.isFile() ? { highWaterMark: 1 << 20, end: Math.max(0, known - 1) } : { highWaterMark: 1 << 20 };
  const stream = known === 0 && st.isFile() ? (async function* () {})() : fs.createReadStream(source, opts);
  return { stream: stream as AsyncIterable<Uint8Array>, rawSize: known };
}

/**
 * Writes `source` (a path to a raw image or device, or a byte stream) as a
 * chunked image at `outPath`, fsynced. On any failure (including abort) the
 * output and spool files are removed and the error is rethrown.
 */
export async function writeImage(source: string | Readable | AsyncIterable<Uint8Array>, outPath: string, opts: WriteImageOptions = {}, onProgress?: (p: WriteProgress) => void): Promise<ImageSummary> {
  const chunkSize = checkChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const level = opts.level ?? 6;
  const concurrency = Math.max(1, opts.concurrency ?? Math.max(2, os.availableParallelism()));
  const src = await openSource(source, opts.rawSize);
  const known = src.rawSize;
  const reserve = known === undefined ? 0 : Math.ceil(known / chunkSize) * INDEX_ENTRY_SIZE;
  const spoolPath = `${outPath}.spool`;
  const out = await fs.promises.open(outPath, 'w');
  const spool = known === undefined ? await fs.promises.open(spoolPath, 'w+') : undefined;
  const dataStart = known === undefined ? 0 : HEADER_SIZE + reserve;
  const indexParts: Buffer[] = [];
  const whole = crypto.createHash('sha256');
  const indexHash = crypto.createHash('sha256');
  const p: WriteProgress = { rawDone: 0, rawSize: known, chunksDone: 0, storedChunks: 0, storedBytes: 0 };

  const store = async (n: number, raw: Buffer, enc: EncodedChunk | undefined): Promise<void> => {
    whole.update(raw);
    if (enc) {
      const offset = (spool ? 0 : dataStart) + p.storedBytes;
      const entry = encodeIndexEntry({ chunkNumber: n, codec: enc.codec, offset, storedLength: enc.stored.length, rawLength: raw.length, sha256: enc.sha256 });
      if (spool) {
        indexParts.push(entry);
        await writeFully(spool, enc.stored, p.storedBytes);
      } else {
        if (p.storedChunks * INDEX_ENTRY_SIZE >= reserve) throw new InvalidInputError('source is larger than its stated size');
        indexHash.update(entry);
        await writeFully(out, entry, HEADER_SIZE + p.storedChunks * INDEX_ENTRY_SIZE);
        await writeFully(out, enc.stored, offset);
      }
      p.storedChunks++;
      p.storedBytes += enc.stored.length;
    }
    p.rawDone += raw.length;
    p.chunksDone = n + 1;
    onProgress?.({ ...p });
  };

  try {
    const queue: { n: number; raw: Buffer; enc: Promise<EncodedChunk | undefined> }[] = [];
    let n = 0;
    for await (const raw of cut(src.stream, chunkSize)) {
      opts.signal?.throwIfAborted();
      const enc = isAllZero(raw) ? Promise.resolve(undefined) : encodeChunkAsync(raw, level);
      enc.catch(() => {});
      queue.push({ n: n++, raw, enc });
      if (queue.length >= concurrency) {
        const q = queue.shift()!;
        await store(q.n, q.raw, await q.enc);
      }
    }
    for (const q of queue.splice(0)) await store(q.n, q.raw, await q.enc);
    opts.signal?.throwIfAborted();
    const rawSize = p.rawDone;
    if (known !== undefined && rawSize !== known) throw new InvalidInputError(`source gave ${rawSize} bytes, expected ${known}`);
    const chunkCount = Math.ceil(rawSize / chunkSize);
    const indexLen = p.storedChunks * INDEX_ENTRY_SIZE;
    const dataOffset = spool || p.storedBytes === 0 ? HEADER_SIZE + indexLen : dataStart;
    const header: ImageHeader = {
      version: IMAGE_VERSION,
      chunkSize,
      rawSize,
      chunkCount,
      storedChunks: p.storedChunks,
      dataOffset,
      dataLength: p.storedBytes,
      sha256: whole.digest('hex'),
      indexSha256: indexHash.digest('hex'),
    };
    if (spool) {
      const index = Buffer.concat(indexParts);
      for (let i = 0; i < index.length; i += INDEX_ENTRY_SIZE) index.writeBigUInt64LE(index.readBigUInt64LE(i + 8) + BigInt(dataOffset), i + 8);
      header.indexSha256 = crypto.createHash('sha256').update(index).digest('hex');
      await writeFully(out, index, HEADER_SIZE);
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0; pos < p.storedBytes;) {
        const { bytesRead } = await spool.read(buf, 0, Math.min(buf.length, p.storedBytes - pos), pos);
        if (bytesRead === 0) throw new Error(`spool file ${spoolPath} shrank`);
        await writeFully(out, buf.subarray(0, bytesRead), dataOffset + pos);
        pos += bytesRead;
      }
      await spool.close();
      await fs.promises.rm(spoolPath, { force: true });
    } else {
      await out.truncate(dataOffset + p.storedBytes);
    }
    await writeFully(out, encodeHeader(header), 0);
    await out.sync();
    await out.close();
    return { rawSize, storedSize: dataOffset + p.storedBytes, chunkSize, chunkCount, storedChunks: p.storedChunks, sha256: header.sha256 };
  } catch (err) {
    await out.close().catch(() => {});
    await spool?.close().catch(() => {});
    await fs.promises.rm(outPath, { force: true });
    await fs.promises.rm(spoolPath, { force: true });
    throw err;
  }
}
