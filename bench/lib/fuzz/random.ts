/** A seeded PRNG (mulberry32) and the picks the fuzzers make with it, so a run replays from its seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A length skewed small, sometimes large: 0..max. */
  length(max: number): number {
    const r = this.next();
    if (r < 0.6) return this.int(Math.min(max, 16) + 1);
    if (r < 0.9) return this.int(Math.min(max, 512) + 1);
    return this.int(max + 1);
  }
  /** Printable ASCII, some control bytes and non-ASCII now and then. */
  text(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      s += r < 0.9 ? String.fromCharCode(0x20 + this.int(95)) : r < 0.95 ? String.fromCharCode(this.int(32)) : String.fromCharCode(0x80 + this.int(0x780));
    }
    return s;
  }
  /** A number as a client might send it: plain, huge, negative, fractional, or not a number. */
  numberish(): string {
    return this.pick(['0', '1', '8', '512', '1468', '65464', '65535', '65536', '-1', '1e9', '99999999999999999999', '1.5', 'abc', '', ' 7', '0x10', String(this.int(70000))]);
  }
}
