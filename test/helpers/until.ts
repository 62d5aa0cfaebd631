/** Polling for a state instead of waiting a fixed time for it. */

/**
 * Resolves with the first truthy value of `fn` (sync or async), polling every
 * `everyMs`; rejects when `ms` pass first, naming `what` (a function is asked
 * then, so the message can show the last state seen).
 */
export async function until<T>(what: string | (() => string), fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 10_000, everyMs = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
