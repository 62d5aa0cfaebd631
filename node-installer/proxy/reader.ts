/**
 * Streams a byte range of an image to a local client in order, piece by piece,
 * writing a piece only once it is verified. A sliding window of pieces ahead of
 * the reader is raised above the background rarest-first download.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { ImageSession } from './session.js';

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
      const buf = await session.read(p, from, to - from + 1);
      session.stats.served += buf.length;
      if (!out.write(buf)) await once(out, 'drain', { signal });
    }
  } finally {
    if (win) session.unprioritise(win[0], win[1]);
  }
}
