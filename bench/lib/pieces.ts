/**
 * Received bytes copied into a new buffer per piece, as a swarm node keeps
 * them (its receive path gives each piece a buffer of its own): the fresh
 * memory the benchmarks time.
 */
export function copyIntoPieces(pieceLength: number): (data: Uint8Array) => void {
  let piece = Buffer.allocUnsafe(pieceLength);
  let at = 0;
  return (d) => {
    for (let off = 0; off < d.length;) {
      const k = Math.min(d.length - off, pieceLength - at);
      piece.set(d.subarray(off, off + k), at);
      at += k;
      off += k;
      if (at === pieceLength) [piece, at] = [Buffer.allocUnsafe(pieceLength), 0];
    }
  };
}
