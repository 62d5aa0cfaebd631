/**
 * Writes a chunked image onto a disk (block device or file), streaming.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { CorruptImageError } from './errors.js';
import { openTarget, writeFully } from './file-io.js';
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
  signal?: AbortSignal;
  onHeader?: (h: ImageHeader) => void;
  onProgress?: (p: ApplyProgress) => void;
}

/**
 * Writes every verified chunk of the image at its offset in `targetPath`
 * (created when absent; a regular file shorter than the image is extended to
 * the raw size), fsyncs, and returns the SHA-256 (hex) of the raw image as
 * written, computed in order. A chunk that fails verification is never
 * written: CorruptImageError names it. The image's recorded SHA-256 must match
 * the computed one, else CorruptImageError.
 */
export async function applyImage(source: ImageSource, targetPath: string, opts: ApplyImageOptions = {}): Promise<string> {
  const img = await openImage(source, { signal: opts.signal });
  const h = img.header;
  opts.onHeader?.(h);
  let fh: fs.promises.FileHandle;
  try {
    fh = await openTarget(targetPath, h.rawSize);
  } catch (err) {
    await img.close();
    throw err;
  }
  const hash = crypto.createHash('sha256');
  const progress: ApplyProgress = { rawDone: 0, rawSize: h.rawSize, written: 0 };
  const zeroGap = async (until: number): Promise<void> => {
    while (progress.rawDone < until) {
      const n = Math.min(h.chunkSize, until - progress.rawDone);
      const z = zeroBuffer(n);
      hash.update(z);
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
      hash.update(c.data);
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
  const digest = hash.digest('hex');
  if (digest !== h.sha256) throw new CorruptImageError(`image SHA-256 mismatch: wrote ${digest}, header says ${h.sha256}`);
  return digest;
}

/**
 * Reads the whole image, verifying every chunk and the image SHA-256, without
 * writing anything. Returns the header.
 */
export async function verifyImage(source: ImageSource, opts: { signal?: AbortSignal; onProgress?: (rawDone: number, rawSize: number) => void } = {}): Promise<ImageHeader> {
  const img = await openImage(source, { signal: opts.signal });
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
