/**
 * Streams a byte range of an image to a local client in order, piece by piece,
 * writing a piece only once it is verified. A sliding window of pieces ahead of
 * the reader is raised above the background rarest-first download.
 *
 * Pieces are copied into a few buffers of the call's own (at most 4 MiB
 * of them, or one piece where pieces are larger), each used again
 * once `out` reports its last write done (its write callback): a long read
 * makes no new memory per piece. Buffers still being written when the call
 * ends are left to `out`.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { abortable } from './filler.js';
import type { ImageSession } from './session.js';

/** Piece buffers per call, at most: writes of this many pieces may be in flight while the next is read. */
const MAX_BUFFERS = 4;
/** Bytes of piece buffers per call, at most, unless one piece is larger (pieces are 256 KiB to 16 MiB). */
const BUFFER_BYTES = 4 << 20;

/** Pieces kept prioritised ahead of the reader: about 8 MiB, at least 4, at most 64. */
export function windowPieces(pieceLength: number): number {
  return Math.min(64, Math.max(4, Math.ceil((8 << 20) / pieceLength)));
}

/** Writes bytes `start..end` (inclusive) of the image to `out`; rejects on abort or when the bytes cannot be had. */
export async function streamRange(session: ImageSession, start: number, end: number, out: Writable, signal: AbortSignal): Promise<void> {
  if (end < start) return;
  const pl = session.pieceLength;
  const first = Math.floor(start / pl);
  const last = Math.floor(end / pl);
  const size = windowPieces(pl);
  let win: [number, number] | undefined;
  const count = Math.max(1, Math.min(MAX_BUFFERS, Math.floor(BUFFER_BYTES / pl)));
  const bufs: Buffer[] = [];
  const written: Promise<void>[] = [];
  try {
    for (let p = first; p <= last; p++) {
      if (!win || p >= win[0] + Math.ceil(size / 2)) {
        const next: [number, number] = [p, Math.min(last, p + size - 1)];
        session.prioritise(next[0], next[1]);
        if (win) session.unprioritise(win[0], win[1]);
        win = next;
      }
      await session.ensurePiece(p, last, signal);
      const from = p === first ? start - p * pl : 0;
      const to = p === last ? end - p * pl : pl - 1;
      const slot = (p - first) % count;
      // The buffer's previous piece must be out of the way before it is overwritten.
      if (written[slot]) await abortable(written[slot], signal);
      // No piece of the range is longer than the range.
      const buf = (bufs[slot] ??= Buffer.allocUnsafe(Math.min(pl, end - start + 1)));
      const len = to - from + 1;
      await session.readInto(p, from, len, buf, 0);
      session.stats.served += len;
      let wrote!: () => void;
      written[slot] = new Promise<void>((resolve) => (wrote = resolve));
      if (!out.write(buf.subarray(0, len), () => wrote())) await once(out, 'drain', { signal });
    }
  } finally {
    if (win) session.unprioritise(win[0], win[1]);
  }
}
