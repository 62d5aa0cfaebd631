/**
 * The parts of webtorrent 2.8.5 kickswarm peers use, typed (the package ships
 * no type declarations), and the client settings every peer shares: TCP only,
 * no DHT, LSD, PEX, NAT traversal or WebRTC. The swarm is the cluster.
 * Shared by the frontend's seeder and the node proxy.
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
  _select(from: number, to: number, priority: number, notify: null, isStream: true): void;
  _deselect(from: number, to: number, isStream: true): void;
  _markVerified(index: number): void;
  _checkDone(): boolean;
  _drain(): void;
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

/** The webtorrent client class. */
/**
 * The webtorrent release these declarations and private calls (`_select`,
 * `_deselect`, `_markVerified`, `_checkDone`, `_drain`, a wire's `_onHave`)
 * were written against; test/unit/webtorrent-pin.test.ts fails when the
 * installed one differs, so an upgrade means re-reading its source first.
 */
export const WEBTORRENT_VERSION = '2.8.5';

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

/**
 * Disconnects a peer that announces (HAVE) a piece index the torrent does not
 * have. webtorrent 2.8.5's rarity map stores a HAVE at its index in a plain
 * array and refills the whole array on the next new peer or bitfield: one HAVE
 * for index 4294967295 made that fill run the process out of memory. Call
 * right after `client.add()`: the check is in place when a peer's wire joins
 * the torrent, before any of its messages after the handshake is read.
 */
export function dropPeersWithBadHaves(torrent: Torrent, pieces: number): void {
  torrent.on('wire', (wire: Wire) => {
    const w = wire as unknown as { _onHave?: (index: number) => void };
    const onHave = w._onHave;
    if (typeof onHave !== 'function') return;
    w._onHave = (index: number) => {
      if (!Number.isInteger(index) || index < 0 || index >= pieces) {
        wire.destroy();
        return;
      }
      onHave.call(wire, index);
    };
  });
}

/** Control over a torrent's piece picker (see coalescePicking). */
export interface Picking {
  /** Makes no new requests until release(); requests already sent still complete. */
  hold(): void;
  /** Lets the picker run again, at once. */
  release(): void;
}

interface Corkable {
  cork(): void;
  uncork(): void;
  destroyed?: boolean;
}

/**
 * Runs `torrent`'s piece picker at most once per event-loop turn, and sends
 * the requests one pass makes to a peer in one write. webtorrent 2.8.5 runs
 * the picker (every wire, every selection from its start) after every 16 KiB
 * block received, and writes every request message (17 bytes) to its socket
 * on its own; one socket read holds several blocks, and one pass after all of
 * them requests as much as one pass after each. The peers' sockets are corked
 * for the pass and uncorked on the next turn, once the wires have flushed.
 */
export function coalescePicking(torrent: Torrent): Picking {
  const t = torrent as unknown as { _update(): void; _updateWireWrapper(): void; _peers?: Map<string, { conn?: Partial<Corkable> | null }> | null };
  let queued = false;
  let held = false;
  const run = () => {
    queued = false;
    if (held || torrent.destroyed) return;
    const corked: Corkable[] = [];
    for (const peer of t._peers?.values() ?? []) {
      const c = peer.conn;
      if (c && typeof c.cork === 'function' && typeof c.uncork === 'function' && !c.destroyed) {
        c.cork();
        corked.push(c as Corkable);
      }
    }
    try {
      t._updateWireWrapper();
    } finally {
      if (corked.length > 0) setImmediate(() => corked.forEach((c) => c.uncork()));
    }
  };
  t._update = () => {
    if (queued) return;
    queued = true;
    setImmediate(run);
  };
  return {
    hold: () => void (held = true),
    release: () => {
      if (!held) return;
      held = false;
      t._update();
    },
  };
}

interface WireParser {
  _write(data: Uint8Array, cb: (err: Error | null) => void): void;
  _parser(buf: Uint8Array): void;
  _parserSize: number;
  _buffer: Uint8Array[];
  _bufferSize: number;
  _encryptionMethod?: number;
  _cryptoSyncPattern?: Uint8Array | null;
}

/** `n` bytes taken off the front of `w._buffer`: a view when one buffer holds them, else one copy. */
function takeBytes(w: WireParser, n: number): Uint8Array {
  const first = w._buffer[0]!;
  if (first.length >= n) {
    if (first.length === n) w._buffer.shift();
    else w._buffer[0] = first.subarray(n);
    return first.subarray(0, n);
  }
  const out = Buffer.allocUnsafe(n);
  for (let at = 0; at < n;) {
    const b = w._buffer[0]!;
    const k = Math.min(b.length, n - at);
    out.set(k === b.length ? b : b.subarray(0, k), at);
    at += k;
    if (k === b.length) w._buffer.shift();
    else w._buffer[0] = b.subarray(k);
  }
  return out;
}

/**
 * Makes every wire of `torrent` parse incoming messages without copying them.
 * bittorrent-protocol 4 joins whatever is left of the last read with each
 * new socket read (a fresh buffer and a copy of every byte received, again
 * for every read while a large message is incomplete); here a message that
 * lies inside one read is a view of it and only a message that spans reads is
 * copied, once. Wires using encryption keep the library's own parser.
 */
export function parseWithoutCopies(torrent: Torrent): void {
  torrent.on('wire', (wire: Wire) => {
    const w = wire as unknown as WireParser;
    const original = w._write;
    if (typeof original !== 'function' || !Array.isArray(w._buffer)) return;
    w._write = function (this: WireParser, data: Uint8Array, cb: (err: Error | null) => void) {
      if (this._encryptionMethod || this._cryptoSyncPattern) return original.call(this, data, cb);
      this._bufferSize += data.length;
      this._buffer.push(data);
      while (this._bufferSize >= this._parserSize) {
        const n = this._parserSize;
        this._bufferSize -= n;
        this._parser(n === 0 ? new Uint8Array() : takeBytes(this, n));
      }
      cb(null);
    };
  });
}
