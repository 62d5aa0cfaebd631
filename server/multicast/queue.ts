/**
 * The sender's work list: chunks receivers asked for, oldest first. A request
 * for a chunk that is already waiting is merged into it (the union of the
 * wanted blocks; a whole-chunk request absorbs any partial one), so however
 * many receivers lack a chunk, it waits in the list once. Also here: the log
 * of recent passes (which seq each block went out with), the request split
 * against a pass in progress, and the table of receivers heard from.
 */
import { newBitmap, type RequestItem, seqAfter, setBit, testBit } from '../../protocol/frisbee.js';

/** One chunk to send: all of its blocks, or those set in the bitmap. */
export interface SendJob {
  chunk: number;
  /** Bit i set = block i wanted; undefined = every block. */
  blocks?: Buffer;
}

/** ORs `b` into `a` (a is resized when shorter); returns a. */
export function orBitmap(a: Buffer, b: Buffer): Buffer {
  const out = a.length >= b.length ? a : Buffer.concat([a, Buffer.alloc(b.length - a.length)]);
  for (let i = 0; i < b.length; i++) out[i] = out[i]! | b[i]!;
  return out;
}

export class SendQueue {
  private readonly jobs = new Map<number, Buffer | undefined>();

  get length(): number {
    return this.jobs.size;
  }

  has(chunk: number): boolean {
    return this.jobs.has(chunk);
  }

  /** Adds or merges; returns true when the chunk was not waiting yet. */
  add(chunk: number, blocks?: Buffer): boolean {
    if (!this.jobs.has(chunk)) {
      this.jobs.set(chunk, blocks ? Buffer.from(blocks) : undefined);
      return true;
    }
    const cur = this.jobs.get(chunk);
    if (cur === undefined) return false;
    this.jobs.set(chunk, blocks ? orBitmap(cur, blocks) : undefined);
    return false;
  }

  /** The oldest job's chunk, left in place. */
  peek(): number | undefined {
    const first = this.jobs.keys().next();
    return first.done ? undefined : first.value;
  }

  /** Takes the oldest job. */
  shift(): SendJob | undefined {
    const first = this.jobs.entries().next();
    if (first.done) return undefined;
    const [chunk, blocks] = first.value;
    this.jobs.delete(chunk);
    return blocks ? { chunk, blocks } : { chunk };
  }

  clear(): void {
    this.jobs.clear();
  }
}

/**
 * The sequence number each block of the most recently sent chunks last went
 * out with, so that a request can be told apart from a block still on its way
 * to the receiver (REQUEST.lastSeq older than the block's send).
 */
export class PassLog {
  private readonly seqs = new Map<number, Float64Array>();

  constructor(private readonly keep = 64) {}

  /** The per-block array for a chunk about to be sent (-1 = not sent recently); it becomes the newest. */
  begin(chunk: number, blockCount: number): Float64Array {
    let a = this.seqs.get(chunk);
    if (a && a.length === blockCount) this.seqs.delete(chunk);
    else a = new Float64Array(blockCount).fill(-1);
    this.seqs.set(chunk, a);
    if (this.seqs.size > this.keep) this.seqs.delete(this.seqs.keys().next().value!);
    return a;
  }

  has(chunk: number): boolean {
    return this.seqs.has(chunk);
  }

  /** The seq block `block` of `chunk` last went out with, or undefined. */
  lastSent(chunk: number, block: number): number | undefined {
    const v = this.seqs.get(chunk)?.[block];
    return v === undefined || v < 0 ? undefined : v;
  }

  clear(): void {
    this.seqs.clear();
  }
}

/** Receivers a sender has heard from (bounded: the longest silent is forgotten first). */
export class ReceiverTable {
  private readonly seen = new Map<number, { address: string; lastSeen: number; left: boolean }>();

  constructor(private readonly max = 4096) {}

  note(id: number, address: string, left: boolean, now = Date.now()): void {
    const r = this.seen.get(id);
    if (r) {
      Object.assign(r, { lastSeen: now, left, address });
      return;
    }
    if (this.seen.size >= this.max) {
      let oldest: number | undefined;
      let at = Infinity;
      for (const [k, v] of this.seen) if (v.lastSeen < at) [oldest, at] = [k, v.lastSeen];
      this.seen.delete(oldest!);
    }
    this.seen.set(id, { address, lastSeen: now, left });
  }

  get size(): number {
    return this.seen.size;
  }

  /** Heard from within `withinMs` and not left. */
  active(withinMs: number, now = Date.now()): number {
    let n = 0;
    for (const r of this.seen.values()) if (!r.left && now - r.lastSeen < withinMs) n++;
    return n;
  }
}

/**
 * Splits a request for a chunk of `count` blocks: `ahead` = wanted blocks the
 * pass in progress (next block `pos`, when this chunk is being sent) will
 * still send; `behind` = wanted blocks to queue, leaving out those last sent
 * after the receiver's `lastSeq` (still on their way to it); undefined when
 * nothing needs queueing.
 */
export function splitRequest(item: RequestItem, count: number, pos: number | undefined, passes: PassLog, lastSeq: number | undefined): { ahead: Buffer; behind?: Buffer } {
  const ahead = newBitmap(count);
  const behind = newBitmap(count);
  let any = false;
  for (let b = 0; b < count; b++) {
    if (item.blocks && !testBit(item.blocks, b)) continue;
    if (pos !== undefined && b >= pos) {
      setBit(ahead, b);
      continue;
    }
    const sent = passes.lastSent(item.chunk, b);
    if (sent !== undefined && lastSeq !== undefined && seqAfter(sent, lastSeq)) continue;
    setBit(behind, b);
    any = true;
  }
  return any ? { ahead, behind } : { ahead };
}
