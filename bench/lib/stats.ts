/** Small numeric helpers shared by the benchmarks. */

/** The q-quantile (0..1) of `values` by the nearest-rank method; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

/** p50, p90, p99 and max of `values`. */
export function latencySummary(values: readonly number[]): { p50: number; p90: number; p99: number; max: number } {
  return { p50: quantile(values, 0.5), p90: quantile(values, 0.9), p99: quantile(values, 0.99), max: quantile(values, 1) };
}

/** The median (the lower middle one for an even count). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Rounds to `digits` decimals (2 by default). */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A positive integer from a command-line flag, or an Error naming the flag. */
export function positiveInt(flag: string, v: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${flag} must be a whole number 1..${max}, not ${JSON.stringify(v)}`);
  return n;
}

/** A positive number from a command-line flag, or an Error naming the flag. */
export function positiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number, not ${JSON.stringify(v)}`);
  return n;
}

/** A number >= 0 from a command-line flag, or an Error naming the flag. */
export function nonNegativeNumber(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number >= 0, not ${JSON.stringify(v)}`);
  return n;
}

/** `key=value` pairs on one line, for the human-readable summaries. */
export function keyValues(o: Record<string, unknown>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}
