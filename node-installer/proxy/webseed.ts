/**
 * The proxy's web seed fallback: whole pieces fetched from the frontend with
 * HTTP Range requests and checked against the torrent's SHA-1 piece hashes, so
 * bytes that come this way are as trustworthy as bytes from the swarm.
 */
import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { CorruptImageError, UnavailableError } from '../../protocol/errors.js';

export interface PieceLayout {
  length: number;
  pieceLength: number;
  /** Hex SHA-1 of every piece, in order. */
  hashes: string[];
}

export interface WebSeedOptions {
  /** The image URL on the frontend (`<frontend>/install/images/NAME`). */
  url: string;
  dispatcher?: Dispatcher;
  /** Attempts per piece before giving up (default 3). */
  attempts?: number;
  /** Per-request timeout in ms (default 30000). */
  timeoutMs?: number;
}

export class WebSeed {
  constructor(
    private readonly layout: PieceLayout,
    private readonly opts: WebSeedOptions,
  ) {}

  pieceSize(index: number): number {
    const { length, pieceLength } = this.layout;
    return Math.min(pieceLength, length - index * pieceLength);
  }

  /** Piece `index`, verified; UnavailableError or CorruptImageError after the last failed attempt. */
  async fetchPiece(index: number): Promise<Buffer> {
    const attempts = this.opts.attempts ?? 3;
    let last: Error = new Error('no attempt made');
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(250 * 2 ** i);
      try {
        return await this.tryFetch(index);
      } catch (err) {
        last = err as Error;
      }
    }
    throw last;
  }

  private async tryFetch(index: number): Promise<Buffer> {
    const start = index * this.layout.pieceLength;
    const size = this.pieceSize(index);
    const end = start + size - 1;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.opts.url, {
        method: 'GET',
        headers: { range: `bytes=${start}-${end}` },
        dispatcher: this.opts.dispatcher,
        headersTimeout: this.opts.timeoutMs ?? 30_000,
        bodyTimeout: this.opts.timeoutMs ?? 30_000,
      });
    } catch (err) {
      throw new UnavailableError(`web seed ${this.opts.url} unreachable: ${describe(err)}`);
    }
    const whole = res.statusCode === 200 && start === 0 && size === this.layout.length;
    if (res.statusCode !== 206 && !whole) {
      await res.body.dump().catch(() => undefined);
      throw new UnavailableError(`web seed ${this.opts.url} answered HTTP ${res.statusCode} for piece ${index}`);
    }
    const buf = Buffer.from(await res.body.arrayBuffer());
    if (buf.length !== size) {
      throw new CorruptImageError(`piece ${index}: web seed sent ${buf.length} bytes, want ${size}`);
    }
    const sha1 = createHash('sha1').update(buf).digest('hex');
    if (sha1 !== this.layout.hashes[index]) {
      throw new CorruptImageError(`piece ${index}: web seed sent data that fails the piece hash`);
    }
    return buf;
  }
}

export function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string }; code?: string };
  return e?.cause?.code ?? e?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
