/**
 * Writes a chunked image onto a disk (block device or file), streaming.
 */
import crypto from 'node:crypto';
import { CorruptImageError } from './errors.js';
import { hashPrefix } from './file-io.js';
import { zeroBuffer, type ImageHeader } from './image-layout.js';
import { openImage, type ImageSource } from './image-reader.js';
import { openTarget, type TargetFile, type TargetStats } from './target-file.js';

/** Chunk writes the stream runs ahead of (each holds one of the reader's buffers). */
const WRITES_IN_FLIGHT = 2;

export interface ApplyProgress {
  /** Raw bytes of the image covered so far (written or skipped as zero). */
  rawDone: number;
  rawSize: number;
  /** Bytes actually written to the target. */
  written: number;
}

export interface ApplyImageOptions {
  /**
   * Also write the all-zero chunks. Needed when the target is not known to be
   * zero (a used disk). Without it the target's old bytes stay where the image
   * has zeros, which is only right for a fresh (sparse or zeroed) target.
   */
  writeZeros?: boolean;
  /** Also read the target back and hash it (see confirmApplied). */
  verifyTarget?: boolean;
  signal?: AbortSignal;
  onHeader?: (h: ImageHeader) => void;
  onProgress?: (p: ApplyProgress) => void;
  /** Called once the target is closed, with how its bytes were written. */
  onTarget?: (s: TargetStats) => void;
}

/**
 * Writes every verified chunk of the image at its offset in `targetPath`
 * (created when absent; a regular file shorter than the image is extended to
 * the raw size), fsyncs, and returns the SHA-256 (hex) of the raw image as
 * confirmApplied proves it. A chunk that fails verification is never written:
 * CorruptImageError names it.
 */
export async function applyImage(source: ImageSource, targetPath: string, opts: ApplyImageOptions = {}): Promise<string> {
  const img = await openImage(source, { signal: opts.signal, reuseBuffers: true, held: WRITES_IN_FLIGHT });
  const h = img.header;
  opts.onHeader?.(h);
  let target: TargetFile;
  try {
    target = await openTarget(targetPath, h.rawSize);
  } catch (err) {
    await img.close();
    throw err;
  }
  const progress: ApplyProgress = { rawDone: 0, rawSize: h.rawSize, written: 0 };
  const done = (raw: number, written: number) => {
    progress.rawDone += raw;
    progress.written += written;
    opts.onProgress?.({ ...progress });
  };
  // The raw offset the stream has reached (chunks and zero gaps before it are written or being written).
  let at = 0;
  const zeroGap = async (until: number): Promise<void> => {
    if (until <= at) return;
    const n = until - at;
    if (opts.writeZeros) await target.writeZeros(at, n);
    at = until;
    done(n, opts.writeZeros ? n : 0);
  };
  // Writes in flight, oldest first: the stream is read and inflated while they run.
  const writing: Promise<void>[] = [];
  try {
    for await (const c of img.chunks()) {
      await zeroGap(c.diskOffset);
      const n = c.data.length;
      const w = target.write(c.data, c.diskOffset).then(() => done(n, n));
      w.catch(() => undefined);
      writing.push(w);
      if (writing.length > WRITES_IN_FLIGHT) await writing.shift();
      at = c.diskOffset + n;
    }
    while (writing.length) await writing.shift();
    await zeroGap(h.rawSize);
    await target.sync();
  } finally {
    await Promise.allSettled(writing);
    await target.close();
    await img.close();
    opts.onTarget?.(target.stats);
  }
  const short = progress.rawDone < h.rawSize;
  return confirmApplied(targetPath, h, { unwritten: short ? 1 : 0, first: short ? Math.floor(progress.rawDone / h.chunkSize) : undefined, readBack: opts.verifyTarget });
}

/**
 * The raw image's SHA-256 once every chunk of it is on the target. Each stored
 * chunk was checked against its index entry's SHA-256 before it was written,
 * the index against the header's index SHA-256, and the frontend checked the
 * header's whole-image SHA-256 when it registered the image; so a target that
 * got every chunk holds exactly that image, and hashing it again would only
 * re-read what was just written. `unwritten` counts the chunks that were not
 * written, `first` names one (CorruptImageError when any). `readBack` re-reads the target's raw
 * prefix and hashes it too (a check of the write path, through the page
 * cache; it costs a second pass over the image).
 */
export async function confirmApplied(target: string, h: ImageHeader, o: { unwritten: number; first?: number; readBack?: boolean }): Promise<string> {
  if (o.unwritten > 0) throw new CorruptImageError(`${o.unwritten} chunk(s) of ${h.chunkCount} never written`, o.first);
  if (!o.readBack) return h.sha256;
  const sha = await hashPrefix(target, h.rawSize);
  if (sha !== h.sha256) throw new CorruptImageError(`image SHA-256 mismatch: the target holds ${sha}, header says ${h.sha256}`);
  return sha;
}

/**
 * Reads the whole image, verifying every chunk and the image SHA-256, without
 * writing anything. Returns the header.
 */
export async function verifyImage(source: ImageSource, opts: { signal?: AbortSignal; onProgress?: (rawDone: number, rawSize: number) => void } = {}): Promise<ImageHeader> {
  // Each chunk is written before the next is asked for.
  const img = await openImage(source, { signal: opts.signal, reuseBuffers: true });
  const h = img.header;
  const hash = crypto.createHash('sha256');
  let done = 0;
  const zeros = (until: number): void => {
    for (; done < until; done += Math.min(h.chunkSize, until - done)) hash.update(zeroBuffer(Math.min(h.chunkSize, until - done)));
  };
  try {
    for await (const c of img.chunks()) {
      zeros(c.diskOffset);
      hash.update(c.data);
      done += c.data.length;
      opts.onProgress?.(done, h.rawSize);
    }
    zeros(h.rawSize);
  } finally {
    await img.close();
  }
  if (hash.digest('hex') !== h.sha256) throw new CorruptImageError('image SHA-256 mismatch');
  return h;
}
