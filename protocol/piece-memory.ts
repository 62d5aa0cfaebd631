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
 * - take(n) returns a Buffer of exactly n bytes; its contents are
 *   unspecified (the previous piece's bytes). When n is a whole number of
 *   4 KiB blocks it starts on a page boundary (several are carved out of one
 *   page-aligned memory, see alignedBuffers), so a direct write takes it
 *   without a copy;
 * - give() takes back only a buffer take() returned (a view, a slice or a
 *   foreign buffer is refused), and at most `maxFreeBytes` of them wait to be
 *   taken again; the rest are left to the collector;
 * - the caller of give() promises that nothing reads or writes the buffer
 *   afterwards: every holder of a view of it must be done with it.
 */
import { alignedBuffers, DIRECT_BLOCK } from './target-file.js';

/** Bytes of piece buffers carved out of one aligned memory at a time. */
const ARENA_BYTES = 4 << 20;

export class PieceMemory {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  /** Aligned buffers carved but not taken yet (their pages untouched). */
  private readonly carved = new Map<number, Buffer[]>();
  private readonly made = new WeakSet<Uint8Array>();
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
    const buf = this.fresh(length);
    this.made.add(buf);
    this.counts.made++;
    return buf;
  }

  /** True when `buf` is a buffer take() returned. */
  owns(buf: Uint8Array): boolean {
    return this.made.has(buf);
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
    this.carved.clear();
    this.freeBytes = 0;
  }

  /** New memory for one piece: page-aligned when `length` is whole blocks (up to ARENA_BYTES of them carved at once). */
  private fresh(length: number): Buffer {
    if (length % DIRECT_BLOCK !== 0) return Buffer.allocUnsafeSlow(length);
    let list = this.carved.get(length);
    if (!list?.length) this.carved.set(length, (list = alignedBuffers(Math.max(1, Math.floor(ARENA_BYTES / length)), length)));
    return list.pop()!;
  }

  /** Bytes waiting to be taken again. */
  get freeByteCount(): number {
    return this.freeBytes;
  }
}
