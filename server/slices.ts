/**
 * Long synchronous jobs (render every node of a 10,000-node cluster) written
 * once as a generator that yields after each small step, then run either to
 * completion at once (`runNow`, for the CLI) or in slices of about `sliceMs`
 * with the event loop let through between them (`runInSlices`, for a server,
 * which keeps answering other requests meanwhile). `Serial` runs such jobs one
 * at a time, so that concurrent requests queue instead of sharing the CPU, and
 * refuses when too many wait.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BusyError } from '../protocol/errors.js';

/** Runs `job` to its end without yielding to the event loop. */
export function runNow<T>(job: Generator<void, T>): T {
  for (;;) {
    const r = job.next();
    if (r.done) return r.value;
  }
}

/** Runs `job`, letting the event loop run whenever a slice took `sliceMs` (default 10 ms). */
export async function runInSlices<T>(job: Generator<void, T>, sliceMs = 10): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = job.next();
    if (r.done) return r.value;
    if (performance.now() - start >= sliceMs) {
      await nextTurn();
      start = performance.now();
    }
  }
}

/** One job at a time, at most `maxWaiting` queued behind the running one (BusyError beyond, with a Retry-After hint). */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  /** Jobs accepted and not finished: the running one and those waiting. */
  private pending = 0;

  constructor(
    private readonly what: string,
    private readonly maxWaiting = 4,
  ) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.pending > this.maxWaiting) throw new BusyError(`${this.what}: ${this.pending - 1} requests are already waiting; try again shortly`, 5);
    this.pending++;
    const result = this.tail.then(fn).finally(() => this.pending--);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
