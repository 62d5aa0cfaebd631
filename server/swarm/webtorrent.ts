/**
 * The parts of webtorrent 2.8.5 the frontend uses, typed. The package ships no
 * type declarations; everything the seeder touches goes through these shapes.
 */
import { EventEmitter } from 'node:events';
// @ts-ignore -- webtorrent ships no type declarations; the interfaces below describe what is used.
import WebTorrentModule from 'webtorrent';

/** One peer connection (a bittorrent-protocol Wire). */
export interface Wire extends EventEmitter {
  readonly type: string;
  readonly peerId?: string;
  remoteAddress?: string;
  remotePort?: number;
  destroy(): void;
}

/** A chunk store as webtorrent expects it (abstract-chunk-store). */
export interface ChunkStore {
  readonly chunkLength: number;
  get(index: number, opts: { offset?: number; length?: number } | null, cb: (err: Error | null, buf?: Uint8Array) => void): void;
  put(index: number, buf: Uint8Array, cb?: (err: Error | null) => void): void;
  close(cb?: (err?: Error | null) => void): void;
  destroy(cb?: (err?: Error | null) => void): void;
}

export type ChunkStoreFactory = new (chunkLength: number, opts: { length: number }) => ChunkStore;

export interface TorrentOptions {
  store?: ChunkStoreFactory;
  skipVerify?: boolean;
}

export interface Torrent extends EventEmitter {
  readonly infoHash: string;
  readonly name: string;
  readonly length: number;
  readonly pieceLength: number;
  readonly ready: boolean;
  readonly done: boolean;
  readonly destroyed: boolean;
  readonly uploaded: number;
  readonly received: number;
  readonly numPeers: number;
  readonly wires: Wire[];
  readonly discovery?: { tracker?: { update(): void } | null } | null;
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
}

export interface WebTorrentClient extends EventEmitter {
  readonly peerId: string;
  readonly listening: boolean;
  readonly torrents: Torrent[];
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

const WebTorrent = WebTorrentModule as unknown as new (opts: WebTorrentOptions) => WebTorrentClient;

/** A webtorrent client that is listening (its TCP port is known) when the promise resolves. */
export async function createClient(opts: Omit<WebTorrentOptions, keyof typeof TCP_ONLY>): Promise<WebTorrentClient> {
  const client = new WebTorrent({ ...TCP_ONLY, ...opts });
  if (!client.listening) {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      client.once('error', onError);
      client.once('listening', () => {
        client.off('error', onError);
        resolve();
      });
    });
  }
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

/** The piece index of webtorrent's `Piece N failed verification` warning; undefined for other warnings (tracker failures). */
export function isPieceFailure(err: Error): number | undefined {
  const m = /^Piece (\d+) failed verification$/.exec(err.message);
  return m ? Number(m[1]) : undefined;
}
