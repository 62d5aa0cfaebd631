/**
 * The parts of webtorrent 2.8.5 kickswarm peers use, typed (the package ships
 * no type declarations), and the client settings every peer shares: TCP only,
 * no DHT, LSD, PEX, NAT traversal or WebRTC. The swarm is the cluster.
 * Shared by the frontend's seeder and the node proxy. Every use of webtorrent's
 * private API (its internals kickswarm changes or calls) is in
 * webtorrent-private.ts, and nowhere else.
 */
import crypto from 'node:crypto';
import type { EventEmitter } from 'node:events';
import WebTorrentModule from 'webtorrent';

export interface BitField {
  get(index: number): boolean;
}

/** One peer connection (a bittorrent-protocol Wire). */
export interface Wire extends EventEmitter {
  readonly type: string;
  readonly peerId?: string;
  readonly destroyed: boolean;
  readonly peerPieces?: BitField;
  remoteAddress?: string;
  remotePort?: number;
  have(index: number): void;
  destroy(): void;
}

/** A chunk store as webtorrent expects it (abstract-chunk-store). */
export interface ChunkStore {
  readonly chunkLength?: number;
  get(index: number, opts: { offset?: number; length?: number } | null, cb: (err: Error | null, buf?: Uint8Array) => void): void;
  put(index: number, buf: Uint8Array, cb?: (err: Error | null) => void): void;
  close?(cb?: (err?: Error | null) => void): void;
  destroy?(cb?: (err?: Error | null) => void): void;
}

export type ChunkStoreFactory = new (chunkLength: number, opts: { length: number }) => ChunkStore;

export interface TorrentOptions {
  store?: ChunkStoreFactory;
  skipVerify?: boolean;
  /** Upload slots (peers unchoked at once; webtorrent's default is 10). */
  uploads?: number;
  strategy?: 'sequential' | 'rarest';
  deselect?: boolean;
  bitfield?: Uint8Array;
  destroyStoreOnDestroy?: boolean;
  /** Pieces webtorrent caches in memory in front of the store after reading them back (default 20; 0 = none). */
  storeCacheSlots?: number;
}

export interface Torrent extends EventEmitter {
  readonly infoHash: string;
  readonly name: string;
  readonly length: number;
  readonly pieceLength: number;
  readonly lastPieceLength: number;
  readonly ready: boolean;
  readonly done: boolean;
  readonly destroyed: boolean;
  readonly uploaded: number;
  readonly received: number;
  readonly numPeers: number;
  readonly wires: Wire[];
  readonly bitfield: BitField;
  readonly store: ChunkStore | null;
  readonly pieces: unknown[];
  readonly discovery?: { tracker?: { update(): void } | null } | null;
  critical(from: number, to: number): void;
  destroy(opts?: { destroyStore?: boolean }, cb?: (err?: Error | null) => void): void;
}

export interface WebTorrentOptions {
  dht: false;
  lsd: false;
  utPex: false;
  natUpnp: false;
  natPmp: false;
  utp: false;
  webSeeds?: boolean;
  torrentPort?: number;
  uploadLimit?: number;
  downloadLimit?: number;
  maxConns?: number;
  /** 20 bytes as 40 hex digits. */
  peerId?: string;
  tracker?: { proxyOpts?: { httpAgent: unknown } };
}

export interface WebTorrentClient extends EventEmitter {
  readonly peerId: string;
  readonly listening: boolean;
  readonly torrents: Torrent[];
  blocked?: { contains(ip: string): boolean };
  add(torrent: Uint8Array, opts?: TorrentOptions): Torrent;
  address(): { address: string; port: number } | null;
  throttleUpload(rate: number): void;
  destroy(cb?: (err?: Error | null) => void): void;
}

/** Client options every kickswarm peer uses: TCP only, no DHT/LSD/PEX/NAT, no WebRTC. */
export const TCP_ONLY = {
  dht: false,
  lsd: false,
  utPex: false,
  natUpnp: false,
  natPmp: false,
  utp: false,
} as const;

/**
 * The webtorrent release these declarations and the private calls in
 * webtorrent-private.ts were written against; test/unit/webtorrent-pin.test.ts
 * fails when the installed one differs, so an upgrade means re-reading its
 * source first.
 */
export const WEBTORRENT_VERSION = '2.8.5';

/** The webtorrent client class. */
export const WebTorrent = WebTorrentModule as unknown as new (opts: WebTorrentOptions) => WebTorrentClient;

/** Resolves once the client's TCP port is open. */
export async function whenListening(client: WebTorrentClient): Promise<WebTorrentClient> {
  if (client.listening) return client;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    client.once('error', onError);
    client.once('listening', () => {
      client.off('error', onError);
      resolve();
    });
  });
  return client;
}

/** Destroys a client; never throws, resolves once its sockets are closed. */
export function destroyClient(client: WebTorrentClient): Promise<void> {
  return new Promise((resolve) => {
    try {
      client.destroy(() => resolve());
    } catch {
      resolve();
    }
  });
}

/** The piece index of webtorrent's `Piece N failed verification` warning; undefined for other warnings. */
export function failedPiece(err: Error): number | undefined {
  const m = /^Piece (\d+) failed verification$/.exec(err.message);
  return m ? Number(m[1]) : undefined;
}

/**
 * The first 8 bytes of the frontend seeder's peer ID. The frontend super-seeds
 * (advertises only a few pieces to each peer at a time) but holds every piece;
 * a peer that sees this prefix knows any piece can still come from it.
 */
export const FRONTEND_PEER_ID_PREFIX = '-KSFE01-';
const FRONTEND_PREFIX_HEX = Buffer.from(FRONTEND_PEER_ID_PREFIX, 'latin1').toString('hex');

/** A fresh frontend peer ID (hex): the prefix and 12 random bytes. */
export function frontendPeerId(): string {
  return FRONTEND_PREFIX_HEX + crypto.randomBytes(12).toString('hex');
}

/** True when the peer on `wire` said it is a kickswarm frontend. */
export function isFrontendPeer(wire: Wire): boolean {
  return !!wire.peerId?.startsWith(FRONTEND_PREFIX_HEX);
}
