/**
 * Memory for a node's received pieces, reused: a piece's buffer goes back here
 * once nothing holds it any more (its piece store has written it and let it
 * go) and the next piece the node receives is assembled in it.
 *
 * A buffer that is used once and dropped costs the node more than the bytes
 * it holds: the collector runs full collections to free such buffers (every
 * one counts against V8's external memory), and fresh pages are faulted in
 * again. Reusing them keeps a swarm node's memory for pieces flat.
 *
 * Contract:
 * - take(n) returns a Buffer of exactly n bytes that owns its whole
 *   ArrayBuffer; its contents are unspecified (the previous piece's bytes);
 * - give() takes back only a whole buffer that this memory made (a view, a
 *   slice or a foreign buffer is refused), and at most `maxFreeBytes` of them
 *   wait to be taken again; the rest are left to the collector;
 * - the caller of give() promises that nothing reads or writes the buffer
 *   afterwards: every holder of a view of it must be done with it.
 */
export class PieceMemory {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  private readonly made = new WeakSet<ArrayBufferLike>();
  /** Buffers made (fresh memory) and reused (taken from the free list). */
  readonly counts = { made: 0, reused: 0 };

  constructor(readonly maxFreeBytes = 16 << 20) {}

  /** A buffer of `length` bytes: a free one of that length, or a new one. */
  take(length: number): Buffer {
    const list = this.free.get(length);
    const reused = list?.pop();
    if (reused) {
      this.freeBytes -= length;
      this.counts.reused++;
      return reused;
    }
    const buf = Buffer.allocUnsafeSlow(length);
    this.made.add(buf.buffer);
    this.counts.made++;
    return buf;
  }

  /** True when `buf` is a whole buffer this memory made. */
  owns(buf: Uint8Array): boolean {
    return this.made.has(buf.buffer) && buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength;
  }

  /** Takes `buf` back for reuse (see the contract); false when it is not this memory's or the free list is full. */
  give(buf: Uint8Array): boolean {
    if (!this.owns(buf) || this.freeBytes + buf.length > this.maxFreeBytes) return false;
    let list = this.free.get(buf.length);
    if (!list) this.free.set(buf.length, (list = []));
    if (list.includes(buf as Buffer)) return false;
    list.push(buf as Buffer);
    this.freeBytes += buf.length;
    return true;
  }

  /** Lets every free buffer go (to the collector): nothing more is to be received. */
  drain(): void {
    this.free.clear();
    this.freeBytes = 0;
  }

  /** Bytes waiting to be taken again. */
  get freeByteCount(): number {
    return this.freeBytes;
  }
}
