/**
 * Puts pieces fetched from the web seed into a running torrent: each piece is
 * verified by WebSeed, written to the torrent's store, marked verified and
 * announced to connected peers (HAVE), exactly as if a peer had sent it.
 */
import type { ImageStats } from './stats.js';
import { markVerified } from '../../protocol/webtorrent-private.js';
import type { Torrent } from '../../protocol/webtorrent.js';
import type { WebSeed } from './webseed.js';

export class WebSeedFiller {
  private readonly inflight = new Map<number, Promise<void>>();
  private readonly injected = new Set<number>();

  constructor(
    private readonly torrent: Torrent,
    private readonly webSeed: WebSeed,
    private readonly stats: ImageStats,
    /** Pieces fetched at once, and how far ahead of the reader. */
    private readonly lookahead: number,
  ) {}

  /**
   * Fetches piece `index` (and missing pieces after it up to `last` that `want`
   * accepts, at most `lookahead` at once); resolves once `index` is in, rejects
   * when the web seed could not deliver it.
   */
  fill(index: number, last: number, want: (i: number) => boolean = () => true): Promise<void> {
    const end = Math.min(last, index + this.lookahead - 1);
    for (let i = index; i <= end; i++) {
      if (this.has(i) || this.inflight.has(i) || (i !== index && !want(i))) continue;
      if (i !== index && this.inflight.size >= this.lookahead) break;
      const p = this.webSeed
        .fetchPiece(i)
        .then((buf) => this.inject(i, buf))
        .finally(() => this.inflight.delete(i));
      p.catch(() => undefined);
      this.inflight.set(i, p);
    }
    return this.inflight.get(index) ?? Promise.resolve();
  }

  /** True, once, for a piece that verified because the filler put it in. */
  takeInjected(index: number): boolean {
    return this.injected.delete(index);
  }

  private has(index: number): boolean {
    return !!this.torrent.bitfield?.get(index);
  }

  private async inject(index: number, buf: Buffer): Promise<void> {
    const t = this.torrent;
    if (t.destroyed || this.has(index) || !t.store) return;
    await new Promise<void>((resolve, reject) => t.store!.put(index, buf, (err) => (err ? reject(err) : resolve())));
    if (t.destroyed || this.has(index)) return;
    this.stats.fromWebSeed += buf.length;
    this.injected.add(index);
    markVerified(t, index);
  }
}

/** `p`, or the abort reason as soon as `signal` aborts. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
