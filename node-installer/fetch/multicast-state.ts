/**
 * A multicast receiver's view of the image: which stored chunks are missing,
 * partly received, being written or done; block assembly into per-chunk
 * buffers (at most `maxBuffered` at once; data for a chunk beyond that is
 * dropped and asked for again later; a buffer freed by a written or failed
 * chunk is reused for the next one, so receiving takes no fresh memory per
 * chunk); and what to ask the sender for next.
 *
 * Request policy (receiver-driven, Frisbee style):
 * - a chunk is "coming" when we asked for it less than the retry time ago
 *   (`requestTimeoutMs`, doubling per unanswered ask up to 16 x), or saw
 *   another receiver ask for it less than `requestTimeoutMs` ago, or its
 *   blocks are flowing; coming chunks are not asked for again (request
 *   suppression; the sender merges the asks that still cross);
 * - at most `window` chunks are coming at once; the rest wait, in order;
 * - a partly received chunk whose pass is over (data for another chunk
 *   arrived, or none for it for `partialTimeoutMs`) asks for exactly its
 *   missing blocks (a bitmap), at once when data for it arrived since our
 *   last ask (that pass is over), else after `requestTimeoutMs`.
 */
import { type DataPacket, newBitmap, type RequestItem, setBit, testBit } from '../../protocol/frisbee.js';
import type { IndexEntry } from '../../protocol/image-format.js';

type Phase = 'missing' | 'partial' | 'writing' | 'done';

interface ChunkState {
  entry: IndexEntry;
  phase: Phase;
  /** The chunk's stored bytes: a view of `slab`. */
  buf?: Buffer;
  /** The buffer `buf` is in, the size of the largest stored chunk; back to the free list once the chunk is written or reset. */
  slab?: Buffer;
  have?: Buffer;
  got: number;
  blockCount: number;
  blockSize: number;
  lastDataAt: number;
  passEnded: boolean;
  requestedAt: number;
  /** Our asks since data for the chunk last arrived (backs the retry off). */
  asks: number;
  /** Data arrived since our last ask. */
  fresh: boolean;
  othersAt: number;
}

export type AddResult = 'stored' | 'complete' | 'duplicate' | 'done' | 'no_buffer' | 'mismatch' | 'not_stored';

export interface PlanOptions {
  window: number;
  requestTimeoutMs: number;
  partialTimeoutMs: number;
}

/** Wait before asking again: requestTimeoutMs, doubling per unanswered ask, at most 16 x. */
function retryAfter(st: ChunkState, o: PlanOptions): number {
  return o.requestTimeoutMs * 2 ** Math.min(4, Math.max(0, st.asks - 1));
}

function asked(st: ChunkState, now: number): void {
  st.requestedAt = now;
  st.asks++;
  st.fresh = false;
}

export class ChunkTable {
  private readonly chunks = new Map<number, ChunkState>();
  /** Not yet written, in chunk order. */
  private readonly pending = new Set<number>();
  private readonly partials = new Set<number>();
  private buffered = 0;
  /** Buffers of `slabSize` bytes that no chunk holds (at most maxBuffered). */
  private readonly free: Buffer[] = [];
  private readonly slabSize: number;
  private current = -1;
  written = 0;
  /** Raw bytes of all stored chunks. */
  readonly rawTotal: number;

  constructor(
    entries: IndexEntry[],
    private readonly maxBuffered: number,
  ) {
    for (const e of entries) {
      this.chunks.set(e.chunkNumber, {
        entry: e,
        phase: 'missing',
        got: 0,
        blockCount: 0,
        blockSize: 0,
        lastDataAt: 0,
        passEnded: false,
        requestedAt: -Infinity,
        asks: 0,
        fresh: false,
        othersAt: -Infinity,
      });
      this.pending.add(e.chunkNumber);
    }
    this.rawTotal = entries.reduce((n, e) => n + e.rawLength, 0);
    this.slabSize = entries.reduce((n, e) => Math.max(n, e.storedLength), 0);
  }

  /** True when `chunk` is a stored chunk of the image. */
  has(chunk: number): boolean {
    return this.chunks.has(chunk);
  }

  get total(): number {
    return this.chunks.size;
  }

  get complete(): boolean {
    return this.written === this.chunks.size;
  }

  /** Places one DATA block. `complete` means the chunk's bytes are whole: take them with `take`. */
  add(p: DataPacket, now: number): AddResult {
    const st = this.chunks.get(p.chunk);
    if (!st) return 'not_stored';
    if (p.chunk !== this.current) {
      const prev = this.chunks.get(this.current);
      if (prev?.phase === 'partial') prev.passEnded = true;
      this.current = p.chunk;
    }
    if (st.phase === 'writing' || st.phase === 'done') return 'done';
    if (p.storedLength !== st.entry.storedLength) return 'mismatch';
    if (st.phase === 'missing') {
      if (this.buffered >= this.maxBuffered) return 'no_buffer';
      this.buffered++;
      st.phase = 'partial';
      st.slab = this.free.pop() ?? Buffer.allocUnsafe(this.slabSize);
      st.buf = st.slab.subarray(0, p.storedLength);
      st.have = newBitmap(p.blockCount);
      st.blockCount = p.blockCount;
      st.blockSize = p.blockSize;
      st.got = 0;
      this.partials.add(p.chunk);
    } else if (p.blockSize !== st.blockSize) {
      return 'mismatch';
    }
    st.lastDataAt = now;
    st.passEnded = false;
    st.fresh = true;
    st.asks = 0;
    if (testBit(st.have!, p.block)) return 'duplicate';
    p.payload.copy(st.buf!, p.block * st.blockSize);
    setBit(st.have!, p.block);
    st.got++;
    if (st.got < st.blockCount) return 'stored';
    st.phase = 'writing';
    this.partials.delete(p.chunk);
    return 'complete';
  }

  /** The stored bytes of a chunk that just completed. */
  take(chunk: number): { entry: IndexEntry; stored: Buffer } {
    const st = this.chunks.get(chunk)!;
    return { entry: st.entry, stored: st.buf! };
  }

  /** The chunk is on disk (nothing holds its bytes any more): its buffer is free for the next chunk. */
  markWritten(chunk: number): void {
    const st = this.chunks.get(chunk)!;
    st.phase = 'done';
    this.release(st);
    st.have = undefined;
    this.buffered--;
    this.pending.delete(chunk);
    this.written++;
  }

  /** The chunk failed verification (its decode is over): forget its bytes and want it again. */
  reset(chunk: number): void {
    const st = this.chunks.get(chunk)!;
    st.phase = 'missing';
    this.release(st);
    st.have = undefined;
    st.requestedAt = -Infinity;
    st.asks = 0;
    this.buffered--;
  }

  private release(st: ChunkState): void {
    if (st.slab && this.free.length < this.maxBuffered) this.free.push(st.slab);
    st.slab = undefined;
    st.buf = undefined;
  }

  /** Another receiver asked for these chunks (suppresses our own asks). */
  othersAsked(items: RequestItem[], now: number): void {
    for (const i of items) {
      const st = this.chunks.get(i.chunk);
      if (st && !i.blocks) st.othersAt = now;
    }
  }

  /** Stored chunks not yet written, for reports. */
  get missing(): number {
    return this.pending.size;
  }

  /** What to ask for now; marks those chunks as asked. */
  plan(now: number, o: PlanOptions): RequestItem[] {
    const items: RequestItem[] = [];
    let coming = 0;
    for (const n of this.partials) {
      const st = this.chunks.get(n)!;
      coming++;
      const flowing = !st.passEnded && now - st.lastDataAt < o.partialTimeoutMs;
      if (flowing) continue;
      if (!st.fresh && now - st.requestedAt < retryAfter(st, o)) continue;
      const want = newBitmap(st.blockCount);
      for (let b = 0; b < st.blockCount; b++) if (!testBit(st.have!, b)) setBit(want, b);
      items.push({ chunk: n, blocks: want });
      asked(st, now);
    }
    const fresh: ChunkState[] = [];
    for (const n of this.pending) {
      const st = this.chunks.get(n)!;
      if (st.phase !== 'missing') continue;
      if (now - st.requestedAt < retryAfter(st, o) || now - st.othersAt < o.requestTimeoutMs) coming++;
      else fresh.push(st);
    }
    for (const st of fresh) {
      if (coming >= o.window) break;
      items.push({ chunk: st.entry.chunkNumber });
      asked(st, now);
      coming++;
    }
    return items;
  }
}
