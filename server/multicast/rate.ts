/**
 * Send pacing. TokenBucket caps the byte rate with a small burst allowance;
 * RateController adapts the cap to what receivers report (AIMD): when the
 * worst recent loss report exceeds `lossHigh` the rate is multiplied by
 * `decrease`; while every report stays under `lossLow` it grows by
 * `increase` x the configured cap per interval, never above the cap nor below
 * `min`. Loss between the two thresholds holds the rate: random loss is
 * repaired by requests, only heavy loss is treated as congestion.
 */

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    private readonly burstMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.last = now();
    this.tokens = this.burst();
  }

  private burst(): number {
    return Math.max(64 * 1024, (this.rate * this.burstMs) / 1000);
  }

  setRate(rate: number): void {
    this.refill();
    this.rate = rate;
    this.tokens = Math.min(this.tokens, this.burst());
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst(), this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
  }

  /** Takes `n` bytes when available now. */
  take(n: number): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` bytes are available (at least 1). */
  waitMs(n: number): number {
    this.refill();
    return Math.max(1, Math.ceil(((n - this.tokens) * 1000) / this.rate));
  }
}

export interface RateControllerOptions {
  /** Configured cap, bytes per second. */
  cap: number;
  min: number;
  lossHigh: number;
  lossLow: number;
  /** Multiplier applied on heavy loss (default 0.7). */
  decrease?: number;
  /** Fraction of the cap added per quiet interval (default 0.1). */
  increase?: number;
  /** Reports covering fewer datagrams than this are ignored (default 64). */
  minSamples?: number;
}

export class RateController {
  rate: number;
  /** Worst loss seen in the last completed interval (0..1). */
  lastLoss = 0;
  private worst = -1;

  constructor(private readonly o: RateControllerOptions) {
    this.rate = o.cap;
  }

  /** A receiver's report: datagrams received and lost since its previous report. */
  report(received: number, lost: number): void {
    if (received + lost < (this.o.minSamples ?? 64)) return;
    this.worst = Math.max(this.worst, lost / (received + lost));
  }

  /** Ends an interval; returns the new rate. Intervals without reports change nothing. */
  adapt(): number {
    if (this.worst < 0) return this.rate;
    this.lastLoss = this.worst;
    if (this.worst > this.o.lossHigh) this.rate = Math.max(this.o.min, this.rate * (this.o.decrease ?? 0.7));
    else if (this.worst < this.o.lossLow) this.rate = Math.min(this.o.cap, this.rate + this.o.cap * (this.o.increase ?? 0.1));
    this.worst = -1;
    return this.rate;
  }
}
