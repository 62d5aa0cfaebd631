/**
 * The parts of webtorrent 2.8.5 the node proxy uses, typed, plus source-address
 * binding. webtorrent has no option for the addresses it uses, so a client made
 * with `localAddress`:
 * - listens for peers on that address only (the listen call made while the
 *   client is constructed gets the host added);
 * - announces from it (bittorrent-tracker's `proxyOpts.httpAgent`, an undici
 *   Agent with `localAddress`, reaches its fetch as `dispatcher`);
 * - connects out to peers from it (each torrent's `_drain`, the only place that
 *   opens peer connections, sees a `net.connect` that adds `localAddress`).
 * Each patch is applied synchronously around one call and undone at once.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Agent } from 'undici';
// @ts-ignore -- webtorrent ships no type declarations; the interfaces below describe what is used.
import WebTorrentModule from 'webtorrent';

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

export interface ChunkStore {
  get(index: number, opts: { offset?: number; length?: number }, cb: (err: Error | null, buf?: Uint8Array) => void): void;
  put(index: number, buf: Uint8Array, cb: (err: Error | null) => void): void;
}

export interface BitField {
  get(index: number): boolean;
}

export interface Torrent extends EventEmitter {
  readonly infoHash: string;
  readonly length: number;
  readonly pieceLength: number;
  readonly lastPieceLength: number;
  readonly ready: boolean;
  readonly done: boolean;
  readonly destroyed: boolean;
  readonly wires: Wire[];
  readonly bitfield: BitField;
  readonly store: ChunkStore | null;
  readonly pieces: unknown[];
  readonly discovery?: { tracker?: { update(): void } | null } | null;
  critical(from: number, to: number): void;
  destroy(opts?: { destroyStore?: boolean }, cb?: (err?: Error | null) => void): void;
  _select(from: number, to: number, priority: number, notify: null, isStream: true): void;
  _deselect(from: number, to: number, isStream: true): void;
  _markVerified(index: number): void;
  _checkDone(): boolean;
  _drain(): void;
}

export interface TorrentOptions {
  store: new (chunkLength: number, opts: { length: number }) => ChunkStore;
  strategy: 'sequential';
  deselect: true;
  bitfield: Uint8Array;
  destroyStoreOnDestroy: true;
}

export interface WebTorrentClient extends EventEmitter {
  readonly peerId: string;
  readonly listening: boolean;
  blocked?: { contains(ip: string): boolean };
  add(torrent: Uint8Array, opts: TorrentOptions): Torrent;
  address(): { address: string; port: number } | null;
  destroy(cb?: (err?: Error | null) => void): void;
}

interface ClientOptions {
  dht: false;
  lsd: false;
  utPex: false;
  natUpnp: false;
  natPmp: false;
  utp: false;
  webSeeds: false;
  torrentPort: number;
  tracker: { proxyOpts?: { httpAgent: Agent } };
}

const WebTorrent = WebTorrentModule as unknown as new (opts: ClientOptions) => WebTorrentClient;

export interface SwarmClientOptions {
  /** TCP port for incoming peers (0 = any). */
  peerPort: number;
  /** Source and listen address; undefined = the system's choice, all interfaces. */
  localAddress?: string;
}

/** A listening, TCP-only webtorrent client that ignores url-lists (the proxy runs its own verified web seed fallback). */
export async function createSwarmClient(opts: SwarmClientOptions): Promise<{ client: WebTorrentClient; agent?: Agent }> {
  const host = opts.localAddress;
  const agent = host ? new Agent({ localAddress: host }) : undefined;
  const options: ClientOptions = {
    dht: false,
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    utp: false,
    webSeeds: false,
    torrentPort: opts.peerPort,
    tracker: agent ? { proxyOpts: { httpAgent: agent } } : {},
  };
  let client: WebTorrentClient;
  if (host) {
    const createServer = net.createServer;
    net.createServer = ((...args: Parameters<typeof net.createServer>) => {
      const server = createServer(...args);
      const listen = server.listen;
      server.listen = ((port: number, cb?: () => void) => listen.call(server, { port, host }, cb)) as typeof server.listen;
      return server;
    }) as typeof net.createServer;
    try {
      client = new WebTorrent(options);
    } finally {
      net.createServer = createServer;
    }
  } else {
    client = new WebTorrent(options);
  }
  if (!client.listening) {
    await new Promise<void>((resolve, reject) => {
      client.once('error', reject);
      client.once('listening', () => {
        client.off('error', reject);
        resolve();
      });
    });
  }
  return { client, agent };
}

/** Makes every outgoing peer connection of `torrent` leave from `localAddress`. */
export function bindOutgoing(torrent: Torrent, localAddress: string | undefined): void {
  if (!localAddress) return;
  const drain = torrent._drain;
  torrent._drain = function boundDrain(this: Torrent) {
    const connect = net.connect;
    net.connect = ((opts: net.NetConnectOpts, ...rest: unknown[]) =>
      (connect as (...a: unknown[]) => net.Socket)({ ...opts, localAddress }, ...rest)) as typeof net.connect;
    try {
      return drain.call(this);
    } finally {
      net.connect = connect;
    }
  };
}

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
