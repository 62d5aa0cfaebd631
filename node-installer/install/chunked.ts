/**
 * Writes an image onto the target chunk by chunk, out of order, through byte
 * ranges of the image file (the swarm path). Each node takes the image's
 * chunks in an order of its own (random), so nodes that start together ask
 * the swarm for different pieces first and have something to trade, instead
 * of all asking the frontend for the same first pieces at once.
 *
 * Contract: the header and index are read first (two Range requests) and
 * verified (header checksum, index SHA-256, every entry); every chunk is
 * verified against its SHA-256 before it is written at its offset; chunks in
 * `done` (shared across attempts, so a retry resumes) are not fetched again.
 * After the last chunk the target is fsynced and confirmApplied returns the
 * header's SHA-256 (every chunk written; `verifyTarget` also re-reads the
 * target and hashes it). A regular-file target shorter than the image is extended;
 * all-zero chunks (not stored) are written only with `writeZeros`.
 */
import type { Dispatcher } from 'undici';
import { HEADER_SIZE, confirmApplied, decodeChunkAsync, expectedRawLength, indexRange, parseHeader, parseHeaderAndIndex, type ImageHeader, type IndexEntry } from '../../protocol/image-format.js';
import { alignedBuffers, openTarget, type TargetStats } from '../../protocol/target-file.js';
import { fetchImageRange } from '../fetch/http-stream.js';
import { shuffled } from '../shuffle.js';

export interface ChunkedProgress {
  /** Raw bytes written (zero chunks count once written or, without writeZeros, from the start). */
  rawDone: number;
  rawSize: number;
}

export interface ChunkedApplyOptions {
  /** Base URL serving `/install/images/NAME` with Range (the node's proxy). */
  base: string;
  image: string;
  target: string;
  writeZeros: boolean;
  /** Chunk numbers already written and verified; filled in as chunks land. */
  done: Set<number>;
  /** Re-read the target at the end and hash it (confirmApplied). */
  verifyTarget?: boolean;
  /** Chunk requests in flight (default 4). */
  parallel?: number;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  random?: () => number;
  onProgress?: (p: ChunkedProgress) => void;
  /** Called once the target is closed, with how its bytes were written. */
  onTarget?: (s: TargetStats) => void;
}

/** Header and verified index of the image at `base`. */
export async function fetchLayout(base: string, image: string, opts: { dispatcher?: Dispatcher; signal?: AbortSignal } = {}): Promise<{ header: ImageHeader; entries: IndexEntry[] }> {
  const header = parseHeader(await fetchImageRange(base, image, 0, HEADER_SIZE, opts));
  return parseHeaderAndIndex(await fetchImageRange(base, image, 0, indexRange(header).end, opts));
}

/** Applies the image as the module doc says; returns the SHA-256 of the raw image on the target. */
export async function applyChunksOutOfOrder(o: ChunkedApplyOptions): Promise<string> {
  const { header: h, entries } = await fetchLayout(o.base, o.image, { dispatcher: o.dispatcher, signal: o.signal });
  const stored = new Set(entries.map((e) => e.chunkNumber));
  const rawOf = (n: number) => expectedRawLength(h, n);
  const progress: ChunkedProgress = { rawDone: 0, rawSize: h.rawSize };
  for (const n of o.done) progress.rawDone += rawOf(n);
  const target = await openTarget(o.target, h.rawSize);
  try {
    for (let n = 0; n < h.chunkCount; n++) {
      if (stored.has(n) || o.done.has(n)) continue;
      if (o.writeZeros) await target.writeZeros(n * h.chunkSize, rawOf(n));
      o.done.add(n);
      progress.rawDone += rawOf(n);
    }
    o.onProgress?.({ ...progress });
    const queue = shuffled(
      entries.filter((e) => !o.done.has(e.chunkNumber)),
      o.random,
    );
    let failed = false;
    const worker = async (): Promise<void> => {
      // Deflated chunks are inflated into it, one at a time (page-aligned: the target writes it without a copy).
      const [rawOut] = alignedBuffers(1, h.chunkSize + 1) as [Buffer];
      for (let e = queue.pop(); e && !failed; e = queue.pop()) {
        o.signal?.throwIfAborted();
        const bytes = await fetchImageRange(o.base, o.image, e.offset, e.offset + e.storedLength, { dispatcher: o.dispatcher, signal: o.signal });
        const raw = await decodeChunkAsync(e, bytes, rawOut);
        await target.write(raw, e.chunkNumber * h.chunkSize);
        o.done.add(e.chunkNumber);
        progress.rawDone += raw.length;
        o.onProgress?.({ ...progress });
      }
    };
    const stopOthers = (err: unknown): never => {
      failed = true;
      throw err;
    };
    const results = await Promise.allSettled(Array.from({ length: Math.max(1, o.parallel ?? 4) }, () => worker().catch(stopOthers)));
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    await target.sync();
  } finally {
    await target.close();
    o.onTarget?.(target.stats);
  }
  return confirmWritten(o.target, h, o.done, o.verifyTarget);
}

/** confirmApplied for a target whose written chunks are `done`. */
export function confirmWritten(target: string, h: ImageHeader, done: ReadonlySet<number>, readBack = false): Promise<string> {
  let unwritten = 0;
  let first: number | undefined;
  for (let n = 0; n < h.chunkCount; n++) {
    if (done.has(n)) continue;
    unwritten++;
    first ??= n;
  }
  return confirmApplied(target, h, { unwritten, first, readBack });
}
