/**
 * Counts work in flight and refuses more than `max` at once (kickstart.cgi's
 * "busy, come back in N seconds"). A slot is held from `tryAcquire()` until its
 * release function is called, so it covers async work too.
 */
export class InFlightLimiter {
  private active = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max in flight must be a positive integer, got ${max}`);
  }

  /** Work currently holding a slot. */
  get inFlight(): number {
    return this.active;
  }

  /** A release function (idempotent) when a slot is free, else undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.max) return undefined;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
    };
  }

  /** Runs `fn` in a slot; when none is free `onBusy()` is called and must throw. */
  async run<T>(fn: () => T | Promise<T>, onBusy: () => never): Promise<T> {
    const release = this.tryAcquire();
    if (!release) onBusy();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
