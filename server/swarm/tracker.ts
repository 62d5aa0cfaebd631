/**
 * The frontend's BitTorrent tracker: HTTP announce and scrape only (no UDP, no
 * WebSocket, no stats page), mounted on the frontend's own HTTP server so the
 * announce URL is `<frontendUrl>/announce`. Only info-hashes registered with
 * `allow()` are tracked; an announce for anything else gets a bencoded
 * `failure reason`.
 *
 * Who gets into a swarm (each refusal is a bencoded `failure reason`; a
 * `stopped` announce is always taken):
 * - only addresses `mayAnnounce` accepts (the frontend: registered node
 *   addresses and its own);
 * - at most `maxPeersPerAddress` peers (ip:port) per source address;
 * - at most `maxPeersPerSwarm` peers: beyond it newcomers are refused, no
 *   peer is ever evicted to make room; peers that stop announcing for
 *   `peerTtlSeconds` are forgotten.
 * The pinned peer (`pinSeeder()`: the frontend's own seeder, which seeds every
 * tracked image) heads every peer list handed out, whatever the swarm holds,
 * except the one handed to itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Router from '@koa/router';
import { Server as TrackerServerModule } from 'bittorrent-tracker';
import { InvalidInputError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';

interface TrackerPeer {
  type: string;
  complete: boolean;
  peerId: string;
  ip: string;
  port: number;
}

interface TrackerSwarm {
  complete: number;
  incomplete: number;
  peers: { keys: string[]; length: number; peek(key: string): TrackerPeer | undefined };
  _getPeers(numwant: number, ownPeerId: string, isWebRTC: boolean): TrackerPeer[];
}

interface AnnounceParams {
  ip: string;
  addr: string;
  port: number;
  peer_id: string;
  event?: string;
}

interface TrackerServer {
  torrents: Record<string, TrackerSwarm | undefined>;
  onHttpRequest(req: IncomingMessage, res: ServerResponse, opts: { action: 'announce' | 'scrape' }): void;
  on(event: 'warning' | 'error', fn: (err: Error) => void): void;
  on(event: 'start' | 'complete' | 'stop', fn: (addr: string, params: { info_hash: string }) => void): void;
  close(cb: () => void): void;
  createSwarm(infoHash: string, cb: (err: Error | null, swarm?: TrackerSwarm) => void): void;
}

type TrackerServerCtor = new (opts: {
  http: false;
  udp: false;
  ws: false;
  stats: false;
  interval: number;
  trustProxy: boolean;
  peersCacheLength: number;
  peersCacheTtl: number;
  filter: (infoHash: string, params: AnnounceParams, cb: (err: Error | null) => void) => void;
}) => TrackerServer;

const TrackerServerClass = TrackerServerModule as unknown as TrackerServerCtor;

export interface SwarmTrackerOptions {
  log: Logger;
  /** Announce interval the tracker asks clients to keep, in seconds (default 60). */
  announceIntervalSeconds?: number;
  /** Take the peer address from X-Forwarded-For (only behind a reverse proxy; default false). */
  trustProxy?: boolean;
  /** Whether a source address may join swarms (default: any). */
  mayAnnounce?: (ip: string) => boolean;
  /** Peers per swarm (default 1000); newcomers beyond it are refused. */
  maxPeersPerSwarm?: number;
  /** Peers (ip:port) per source address in one swarm (default 4). */
  maxPeersPerAddress?: number;
  /** A peer not heard from for this long is dropped (default 3 announce intervals). */
  peerTtlSeconds?: number;
}

/** The peer every peer list starts with. */
export interface PinnedPeer {
  ip: string;
  port: number;
  /** 40 hex digits. */
  peerId: string;
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
  private seeder: PinnedPeer | undefined;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: SwarmTrackerOptions) {
    this.log = opts.log;
  }

  /** Creates the tracker; requests handled before this (or after close) get a 503 failure. */
  async start(): Promise<void> {
    if (this.server || this.closed) return;
    const intervalSeconds = this.opts.announceIntervalSeconds ?? 60;
    const server = new TrackerServerClass({
      http: false,
      udp: false,
      ws: false,
      stats: false,
      interval: intervalSeconds * 1000,
      trustProxy: this.opts.trustProxy ?? false,
      // The LRU never fills: admit() refuses first, so no peer is evicted for a newcomer.
      peersCacheLength: this.maxPeers + 1,
      peersCacheTtl: (this.opts.peerTtlSeconds ?? 3 * intervalSeconds) * 1000,
      filter: (infoHash, params, cb) => {
        if (!this.allowed.has(infoHash)) return cb(new Error(`torrent ${infoHash} is not served by this tracker`));
        const refusal = this.admit(server.torrents[infoHash], params);
        if (refusal) this.log.debug({ peer: params.addr, infoHash, refusal }, 'tracker refused a peer');
        cb(refusal ? new Error(refusal) : null);
      },
    });
    const createSwarm = server.createSwarm.bind(server);
    server.createSwarm = (infoHash, cb) =>
      createSwarm(infoHash, (err, swarm) => {
        if (swarm) this.pinPeerLists(swarm);
        cb(err, swarm);
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

  /** Puts `peer` (the frontend's seeder) at the head of every peer list handed out from now on. */
  pinSeeder(peer: PinnedPeer): void {
    this.seeder = { ...peer, peerId: peer.peerId.toLowerCase() };
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

  private get maxPeers(): number {
    return this.opts.maxPeersPerSwarm ?? 1000;
  }

  /** Why this announce may not join the swarm, or undefined when it may. */
  private admit(swarm: TrackerSwarm | undefined, params: AnnounceParams): string | undefined {
    if (params.event === 'stopped') return undefined;
    if (this.opts.mayAnnounce && !this.opts.mayAnnounce(params.ip)) return 'this address may not join the swarm';
    if (!swarm || swarm.peers.peek(params.addr)) return undefined;
    let fromAddress = 0;
    // peek() also drops peers not heard from within the TTL.
    for (const key of swarm.peers.keys) if (swarm.peers.peek(key)?.ip === params.ip) fromAddress++;
    if (fromAddress >= (this.opts.maxPeersPerAddress ?? 4)) return 'too many peers from this address';
    if (swarm.peers.length >= this.maxPeers) return 'swarm is full';
    return undefined;
  }

  /** Makes the swarm's peer lists start with the pinned peer. */
  private pinPeerLists(swarm: TrackerSwarm): void {
    const pick = swarm._getPeers.bind(swarm);
    swarm._getPeers = (numwant, ownPeerId, isWebRTC) => {
      const pin = this.seeder;
      if (!pin || isWebRTC || numwant <= 0) return pick(numwant, ownPeerId, isWebRTC);
      const rest = pick(numwant + 1, ownPeerId, isWebRTC).filter((p) => !(p.ip === pin.ip && p.port === pin.port));
      if (ownPeerId === pin.peerId) return rest.slice(0, numwant);
      return [{ type: 'http', complete: true, ...pin }, ...rest].slice(0, numwant);
    };
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
