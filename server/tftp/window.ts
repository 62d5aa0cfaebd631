/**
 * The sending window of one TFTP read transfer (RFC 7440 windowsize; with a
 * window of 1 it is plain RFC 1350 lock-step), put in place of the npm `tftp`
 * library's own window, which resends the whole window on every duplicate
 * ACK and keeps unacknowledged blocks of earlier windows in every later
 * resend (a lossy or duplicating client made a file cost ten times its size).
 *
 * Contract:
 * - Each block is sent once when it enters the window; at most `windowSize`
 *   blocks are unacknowledged at any time.
 * - An ACK for a block in the window moves the window's start past it. Blocks
 *   after the acknowledged one that were already sent are sent again once: an
 *   RFC 7440 receiver acknowledges short of the window's end only when it saw a
 *   gap (and then discards what followed) or timed out.
 * - A duplicate ACK (for the block just before the window) that arrives
 *   within DUPLICATE_ACK_GAP_MS of the window's first block last being sent is
 *   a copy made by the network and changes nothing (RFC 1123 4.2.3.1: no
 *   Sorcerer's Apprentice); later, it is the receiver's own timeout and gets
 *   the unacknowledged blocks again, at most once per that gap, without
 *   extending the transfer's retries.
 * - An ACK for a block outside the window, and any ACK after the last block
 *   was acknowledged, change nothing and send nothing.
 * - Without progress for the transfer timeout the unacknowledged blocks are
 *   sent again, up to the library's retry count; then the transfer ends with a
 *   timeout error (the library's retransmitter does the counting).
 * - Block numbers roll over from 65535 to 0, as the library announces.
 */

/** What the window needs from the library's transfer (its Writer/IncomingRequest). */
export interface WindowHost {
  _sendBlock(block: number, data: Buffer): void;
  _createRetransmitter(): Retransmitter;
}

/** The library's retransmit timer: start(fn) calls fn on each timeout until the retries run out. */
export interface Retransmitter {
  start(fn: () => void): void;
  reset(): void;
}

/** How long after the window's first block was sent a duplicate ACK counts as the receiver's timeout, not a network copy. */
export const DUPLICATE_ACK_GAP_MS = 200;

interface Pending {
  seq: number;
  data: Buffer;
}

export class SendWindow {
  /** Read by the library's writer when the transfer ends. */
  readonly _writerTimer: Retransmitter;
  /** Absolute sequence number of the last acknowledged block (0 = none). */
  private base = 0;
  /** Absolute sequence number of the last block fed in. */
  private fed = 0;
  /** Blocks fed and not yet acknowledged, in order: base+1 .. fed. */
  private unacked: Pending[] = [];
  private eof = false;
  /** The library's continuation, held while the window is full or the last block is unacknowledged. */
  private waiting: (() => void) | null = null;
  /** When the first unacknowledged block was last sent (ms, monotonic). */
  private headSentAt = 0;
  private readonly resendAll = () => {
    for (const p of this.unacked) this.send(p);
  };

  constructor(
    private readonly host: WindowHost,
    private readonly blockSize: number,
    private readonly windowSize: number,
  ) {
    this._writerTimer = host._createRetransmitter();
  }

  isEOF(): boolean {
    return this.eof;
  }

  /** Takes the next block; calls `cb` when the library may feed another (or, after the last, when it is acknowledged). */
  feed(data: Buffer, cb: () => void): void {
    const p = { seq: ++this.fed, data };
    this.unacked.push(p);
    if (data.length < this.blockSize) this.eof = true;
    this.send(p);
    if (this.unacked.length === 1) this._writerTimer.start(this.resendAll);
    if (this.eof || this.unacked.length >= this.windowSize) this.waiting = cb;
    else cb();
  }

  /** One ACK from the client (its 16-bit block number). */
  resume(block: number): void {
    const inFlight = this.fed - this.base;
    const ahead = (block - (this.base & 0xffff) + 0x10000) & 0xffff;
    if (ahead === 0) {
      if (inFlight > 0 && performance.now() - this.headSentAt >= DUPLICATE_ACK_GAP_MS) this.resendAll();
      return;
    }
    if (ahead > inFlight) return;
    this.base += ahead;
    this.unacked.splice(0, ahead);
    this._writerTimer.reset();
    if (this.unacked.length > 0) {
      this.resendAll();
      this._writerTimer.start(this.resendAll);
    }
    const cb = this.waiting;
    if (!cb) return;
    if (this.eof ? this.unacked.length === 0 : this.unacked.length < this.windowSize) {
      this.waiting = null;
      cb();
    }
  }

  private send(p: Pending): void {
    if (p.seq === this.base + 1) this.headSentAt = performance.now();
    this.host._sendBlock(p.seq & 0xffff, p.data);
  }
}
