/**
 * Writes a chunked image onto a disk (block device or file), streaming.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { CorruptImageError } from './errors.js';
import { hashPrefix, openTarget, writeFully } from './file-io.js';
import { zeroBuffer, type ImageHeader } from './image-layout.js';
import { openImage, type ImageSource } from './image-reader.js';

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
}

/**
 * Writes every verified chunk of the image at its offset in `targetPath`
 * (created when absent; a regular file shorter than the image is extended to
 * the raw size), fsyncs, and returns the SHA-256 (hex) of the raw image as
 * confirmApplied proves it. A chunk that fails verification is never written:
 * CorruptImageError names it.
 */
export async function applyImage(source: ImageSource, targetPath: string, opts: ApplyImageOptions = {}): Promise<string> {
  // Each chunk is written before the next is asked for.
  const img = await openImage(source, { signal: opts.signal, reuseBuffers: true });
  const h = img.header;
  opts.onHeader?.(h);
  let fh: fs.promises.FileHandle;
  try {
    fh = await openTarget(targetPath, h.rawSize);
  } catch (err) {
    await img.close();
    throw err;
  }
  const progress: ApplyProgress = { rawDone: 0, rawSize: h.rawSize, written: 0 };
  const zeroGap = async (until: number): Promise<void> => {
    while (progress.rawDone < until) {
      const n = Math.min(h.chunkSize, until - progress.rawDone);
      const z = zeroBuffer(n);
      if (opts.writeZeros) {
        await writeFully(fh, z, progress.rawDone);
        progress.written += n;
      }
      progress.rawDone += n;
    }
  };
  try {
    for await (const c of img.chunks()) {
      await zeroGap(c.diskOffset);
      await writeFully(fh, c.data, c.diskOffset);
      progress.rawDone += c.data.length;
      progress.written += c.data.length;
      opts.onProgress?.({ ...progress });
    }
    await zeroGap(h.rawSize);
    opts.onProgress?.({ ...progress });
    await fh.sync();
  } finally {
    await fh.close();
    await img.close();
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
