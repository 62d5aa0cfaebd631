/**
 * When kickstart.cgi is busy ("come back in N seconds", 503 + Retry-After).
 *
 * The frontend answers every request on one JavaScript thread, and a
 * kickstart is rendered synchronously, so counting renders in progress
 * measures nothing: each one starts and ends before the next request is read.
 * The gauge watches two things that do grow with overload:
 *
 * - Open requests: kickstart.cgi requests counted from their arrival at the
 *   route (`holdUntilAnswered()`) until the response has been handed to the
 *   kernel, abandoned, or its connection closed. With the synchronous renderer this
 *   grows only with asynchronous work or clients that do not take their
 *   answer. Busy when more than `maxInFlight` are open, this one included.
 * - Event-loop delay (perf_hooks.monitorEventLoopDelay): how late the loop
 *   runs a timer, i.e. how long anything that becomes ready (a request, a
 *   TFTP ACK, a progress report) waits for the thread. Busy when the median
 *   delay of the last completed window (`windowMs`) exceeds `maxLoopDelayMs`:
 *   the thread's turns are long all the time, not once (a single stall such
 *   as a GC pause does not count).
 *
 * Not visible here: connections still waiting in the kernel's accept queue.
 * libuv accepts one connection per loop turn, so a flood of new connections
 * keeps every turn short and queues in the kernel (the listen backlog, see
 * ./server.ts) rather than in the loop; it shows as latency, not as a 503.
 *
 * The delay histogram is sampled only while kickstart requests come (enabled
 * by the first `busy()`, disabled after a minute without one), so an idle
 * gauge costs nothing and needs no close().
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { onSocketClose } from './socket-close.js';

/** Sampling interval of the delay histogram; what it records beyond this is delay. */
const RESOLUTION_MS = 10;
/** The histogram is switched off after this long without a busy() call. */
const IDLE_MS = 60_000;

export interface BusyGaugeOptions {
  /** Open kickstart.cgi requests (arrival to response written) allowed at once. */
  maxInFlight: number;
  /** Median event-loop delay in milliseconds above which kickstart requests are refused. */
  maxLoopDelayMs: number;
  /** Length of one measuring window (default 500 ms). */
  windowMs?: number;
}

export class BusyGauge {
  readonly maxInFlight: number;
  readonly maxLoopDelayMs: number;
  private readonly windowMs: number;
  private open = 0;
  private histogram: IntervalHistogram | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private lastDelayMs = 0;
  private completed = 0;

  constructor(opts: BusyGaugeOptions) {
    if (!Number.isInteger(opts.maxInFlight) || opts.maxInFlight < 1) throw new RangeError(`max in flight must be a positive integer, got ${opts.maxInFlight}`);
    if (!(opts.maxLoopDelayMs > 0)) throw new RangeError(`max loop delay must be a positive number of milliseconds, got ${opts.maxLoopDelayMs}`);
    this.maxInFlight = opts.maxInFlight;
    this.maxLoopDelayMs = opts.maxLoopDelayMs;
    this.windowMs = opts.windowMs ?? 500;
  }

  /** kickstart.cgi requests open now. */
  get inFlight(): number {
    return this.open;
  }

  /** Measuring windows completed since measuring (re)started (what `loopDelayMs()` reports on). */
  get windows(): number {
    return this.completed;
  }

  /** Counts one request as open; the returned function (idempotent) ends it. */
  enter(): () => void {
    this.open++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.open--;
    };
  }

  /**
   * The median event-loop delay (ms) of the last completed window; 0 until a
   * window has completed since measuring (re)started. A window in which the
   * timer never ran at all counts as delayed by its whole length.
   */
  loopDelayMs(): number {
    const now = performance.now();
    if (!this.histogram) {
      this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.histogram.enable();
      this.idleTimer = setTimeout(() => this.stopMeasuring(), IDLE_MS).unref();
      this.windowStart = now;
      this.lastDelayMs = 0;
      this.completed = 0;
      return 0;
    }
    this.idleTimer?.refresh();
    if (now - this.windowStart >= this.windowMs) {
      const h = this.histogram;
      this.lastDelayMs = h.count > 0 ? Math.max(0, h.percentile(50) / 1e6 - RESOLUTION_MS) : now - this.windowStart;
      h.reset();
      this.windowStart = now;
      this.completed++;
    }
    return this.lastDelayMs;
  }

  /** Why a kickstart request must be refused now, or undefined when it may be served. */
  busy(): string | undefined {
    if (this.open > this.maxInFlight) return `${this.open} kickstart requests open, at most ${this.maxInFlight}`;
    const delay = this.loopDelayMs();
    if (delay > this.maxLoopDelayMs) return `event loop ${Math.round(delay)} ms late, at most ${this.maxLoopDelayMs}`;
    return undefined;
  }

  private stopMeasuring(): void {
    this.histogram?.disable();
    this.histogram = undefined;
    this.idleTimer = undefined;
  }
}

/**
 * Counts one request as open in `gauge` until its answer has been handed to
 * the kernel (`finish`), the response was abandoned (`close`), or its
 * connection closed. The last one matters for pipelined requests: an answer
 * queued behind another on a connection that dies never gets a socket, so
 * neither of the response's own events ever fires.
 */
export function holdUntilAnswered(gauge: BusyGauge, req: IncomingMessage, res: ServerResponse): void {
  const done = gauge.enter();
  let forget = (): void => undefined;
  const end = (): void => {
    done();
    res.off('finish', end);
    res.off('close', end);
    forget();
  };
  res.once('finish', end);
  res.once('close', end);
  forget = onSocketClose(req.socket, end);
}
