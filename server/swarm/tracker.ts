/**
 * The frontend's BitTorrent tracker: HTTP announce and scrape only (no UDP, no
 * WebSocket, no stats page), mounted on the frontend's own HTTP server so the
 * announce URL is `<frontendUrl>/announce`. Only info-hashes registered with
 * `allow()` are tracked; an announce for anything else gets a bencoded
 * `failure reason`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Router from '@koa/router';
import { Server as TrackerServerModule } from 'bittorrent-tracker';
import { InvalidInputError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';

interface TrackerSwarm {
  complete: number;
  incomplete: number;
}

interface TrackerServer {
  torrents: Record<string, TrackerSwarm | undefined>;
  onHttpRequest(req: IncomingMessage, res: ServerResponse, opts: { action: 'announce' | 'scrape' }): void;
  on(event: 'warning' | 'error', fn: (err: Error) => void): void;
  on(event: 'start' | 'complete' | 'stop', fn: (addr: string, params: { info_hash: string }) => void): void;
  close(cb: () => void): void;
}

type TrackerServerCtor = new (opts: {
  http: false;
  udp: false;
  ws: false;
  stats: false;
  interval: number;
  trustProxy: boolean;
  filter: (infoHash: string, params: unknown, cb: (err: Error | null) => void) => void;
}) => TrackerServer;

const TrackerServerClass = TrackerServerModule as unknown as TrackerServerCtor;

export interface SwarmTrackerOptions {
  log: Logger;
  /** Announce interval the tracker asks clients to keep, in seconds (default 60). */
  announceIntervalSeconds?: number;
  /** Take the peer address from X-Forwarded-For (only behind a reverse proxy; default false). */
  trustProxy?: boolean;
}

export interface SwarmPeerCounts {
  seeders: number;
  leechers: number;
}

export type TrackerAction = 'announce' | 'scrape';

/** Lowercase 40-digit hex info-hash; anything else is InvalidInputError. */
export function parseInfoHash(input: string): string {
  const s = String(input).trim().toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(s)) {
    throw new InvalidInputError(`malformed info-hash ${JSON.stringify(String(input).slice(0, 60))} (want 40 hex digits)`);
  }
  return s;
}

export class SwarmTracker {
  private server: TrackerServer | undefined;
  private readonly allowed = new Set<string>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: SwarmTrackerOptions) {
    this.log = opts.log;
  }

  /** Creates the tracker; requests handled before this (or after close) get a 503 failure. */
  async start(): Promise<void> {
    if (this.server || this.closed) return;
    const server = new TrackerServerClass({
      http: false,
      udp: false,
      ws: false,
      stats: false,
      interval: (this.opts.announceIntervalSeconds ?? 60) * 1000,
      trustProxy: this.opts.trustProxy ?? false,
      filter: (infoHash, _params, cb) => {
        if (this.allowed.has(infoHash)) cb(null);
        else cb(new Error(`torrent ${infoHash} is not served by this tracker`));
      },
    });
    server.on('warning', (err) => this.log.debug({ err: err.message }, 'tracker refused a request'));
    server.on('error', (err) => this.log.warn({ err: err.message }, 'tracker error'));
    server.on('start', (addr, params) => this.log.debug({ peer: addr, infoHash: params.info_hash }, 'peer joined swarm'));
    server.on('complete', (addr, params) => this.log.debug({ peer: addr, infoHash: params.info_hash }, 'peer completed'));
    server.on('stop', (addr, params) => this.log.debug({ peer: addr, infoHash: params.info_hash }, 'peer left swarm'));
    this.server = server;
  }

  /** Track this info-hash from now on. */
  allow(infoHash: string): void {
    this.allowed.add(parseInfoHash(infoHash));
  }

  /** Stop tracking this info-hash and forget its peers; later announces are refused. */
  disallow(infoHash: string): void {
    const h = parseInfoHash(infoHash);
    this.allowed.delete(h);
    if (this.server) delete this.server.torrents[h];
  }

  isAllowed(infoHash: string): boolean {
    return this.allowed.has(parseInfoHash(infoHash));
  }

  /** Peers the tracker currently knows for this info-hash (zeros when none or unknown). */
  peers(infoHash: string): SwarmPeerCounts {
    const swarm = this.server?.torrents[parseInfoHash(infoHash)];
    return { seeders: swarm?.complete ?? 0, leechers: swarm?.incomplete ?? 0 };
  }

  /** Answers one HTTP announce or scrape on a raw Node request/response pair. */
  handle(req: IncomingMessage, res: ServerResponse, action: TrackerAction): void {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('Cache-Control', 'no-store');
    if (!this.server) {
      res.statusCode = 503;
      res.end('d14:failure reason22:tracker is not runninge');
      return;
    }
    this.server.onHttpRequest(req, res, { action });
  }

  /** Idempotent; forgets all swarms. */
  async close(): Promise<void> {
    this.closed = true;
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Koa routes `GET /announce` and `GET /scrape`, answered by the tracker on the raw request. */
export function trackerRoutes(tracker: SwarmTracker): Router {
  const router = new Router();
  for (const action of ['announce', 'scrape'] as const) {
    router.get(`/${action}`, (ctx) => {
      ctx.respond = false;
      tracker.handle(ctx.req, ctx.res, action);
    });
  }
  return router;
}
