/**
 * Every use kickswarm makes of webtorrent's and bittorrent-protocol's private
 * API (written against webtorrent 2.8.5, WEBTORRENT_VERSION; an ESLint rule
 * keeps these names out of every other file): selections, marking a piece
 * verified, the piece picker, wire parsing, and the `net` calls webtorrent
 * makes without an address option. Clients are made here too (createClient),
 * because binding their listener needs one of those calls.
 */
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import PeerModule from 'webtorrent/lib/peer.js';
import { TCP_ONLY, type Torrent, WebTorrent, type WebTorrentClient, type WebTorrentOptions, type Wire, whenListening } from './webtorrent.js';
import { MAX_WIRE_MESSAGE_BYTES, readInto, reportFaultsTo, usePieceMemory, WireReceiver, type WireParser } from './webtorrent-private-receive.js';
import { boundUploads, type UploadWire } from './webtorrent-private-upload.js';

export { MAX_WIRE_MESSAGE_BYTES, usePieceMemory };

/** The private members of a webtorrent Torrent used here. */
interface TorrentInternals {
  _select(from: number, to: number, priority: number, notify: null, isStream: true): void;
  _deselect(from: number, to: number, isStream: true): void;
  _markVerified(index: number): void;
  _checkDone(): boolean;
  _drain(): void;
  _update(): void;
  _updateWireWrapper(): void;
  _peers?: Map<string, { conn?: Partial<Corkable> | null }> | null;
}

const internals = (t: Torrent): TorrentInternals => t as unknown as TorrentInternals;

/** Asks for pieces `from..to` (a stream selection; priority 0 is the background, higher comes first). */
export function selectPieces(torrent: Torrent, from: number, to: number, priority: number): void {
  if (!torrent.destroyed) internals(torrent)._select(from, to, priority, null, true);
}

/** Withdraws a selectPieces of the same range. */
export function deselectPieces(torrent: Torrent, from: number, to: number): void {
  if (!torrent.destroyed) internals(torrent)._deselect(from, to, true);
}

/** Marks piece `index` verified after the caller put its checked bytes in the store, and tells every peer. */
export function markVerified(torrent: Torrent, index: number): void {
  const t = internals(torrent);
  t._markVerified(index);
  for (const wire of torrent.wires) wire.have(index);
  t._checkDone();
}

/**
 * A webtorrent client with the shared settings that is listening (its TCP
 * port is known) when the promise resolves; its peer port binds `host` when
 * given (see listenOn). `unthrottled`: the client is never rate-limited, and
 * its peers' bytes skip webtorrent's throttle streams (see directPipes).
 */
export async function createClient(opts: Omit<WebTorrentOptions, keyof typeof TCP_ONLY> & { host?: string; unthrottled?: boolean }): Promise<WebTorrentClient> {
  const { host, unthrottled, ...rest } = opts;
  const make = () => new WebTorrent({ ...TCP_ONLY, ...rest });
  const client = host && host !== '0.0.0.0' && host !== '::' ? listenOn(host, make) : make();
  patchPeers();
  if (unthrottled) directPipes(client);
  return whenListening(client);
}

/** The private members of a webtorrent Peer used here. */
interface PeerInternals extends EventEmitter {
  conn: net.Socket | null;
  wire: (Wire & WireParser & NodeJS.WritableStream & { pipe(to: NodeJS.WritableStream): unknown }) | null;
  /** The torrent, once known (an incoming peer's handshake names it). */
  swarm: Torrent | null;
  /** The client's own `throttleGroups` object (every peer of a client holds the same one). */
  throttleGroups?: object;
  setThrottlePipes(): void;
}

/** The `throttleGroups` of the clients whose peers bypass them (see directPipes). */
const unthrottledClients = new WeakSet<object>();

/**
 * Makes every peer connection `client` opens or accepts from now on move its
 * bytes straight between the socket and the wire. webtorrent 2.8.5 puts four
 * streams between them on every connection (a throttle and a byte counter
 * each way, all streamx transforms) whether or not a rate limit is set:
 * every socket read and every message sent passes through two of them, each
 * a queue, a callback and a deferred turn. Here the socket pipes into the
 * wire and the wire into the socket (backpressure as before), and the peer's
 * 'download' and 'upload' events still count every byte, so the torrent's and
 * the client's counters and speeds are unchanged. Only for a client that is
 * never rate-limited: its throttles would not apply to these connections.
 * The socket's bytes go through the node's receive path
 * (webtorrent-private-receive.ts: one reused read buffer per connection,
 * blocks copied straight into their piece buffers) where this Node.js allows.
 */
function directPipes(client: WebTorrentClient): void {
  const groups = (client as unknown as { throttleGroups?: object }).throttleGroups;
  if (groups) unthrottledClients.add(groups);
}

/**
 * Sets up every peer connection of every client made here: the requests it
 * answers are bounded (boundUploads, webtorrent-private-upload.ts), and the
 * connections of an unthrottled client pipe directly (directPipes).
 */
function patchPeers(): void {
  const proto = (PeerModule as { prototype: PeerInternals }).prototype;
  if (typeof proto.setThrottlePipes !== 'function' || (proto.setThrottlePipes as { patched?: true }).patched) return;
  const original = proto.setThrottlePipes;
  const patched = function (this: PeerInternals) {
    const { conn, wire, throttleGroups } = this;
    if (conn && wire) boundUploads(wire as unknown as UploadWire, conn);
    if (!conn || !wire || !throttleGroups || !unthrottledClients.has(throttleGroups)) return original.call(this);
    const receiver = new WireReceiver(wire, () => this.swarm ?? undefined);
    const direct = readInto(conn, (data) => {
      this.emit('download', data.length);
      receiver.receive(data);
    });
    if (!direct) {
      conn.on('data', (chunk: Uint8Array) => this.emit('download', chunk.length));
      conn.pipe(wire);
    }
    wire.on('data', (chunk: Uint8Array) => this.emit('upload', chunk.length));
    wire.pipe(conn);
  };
  proto.setThrottlePipes = Object.assign(patched, { patched: true as const });
}

/**
 * Runs `make` (which constructs a webtorrent client) with its peer listener
 * bound to `host`. webtorrent 2.8.5 has no option for it: its connection pool
 * calls `net.createServer()` and `listen(port, cb)` while the client is
 * constructed, and that one server's listen is given the host here. The patch
 * is undone before this returns.
 */
export function listenOn<T>(host: string, make: () => T): T {
  const mod = net as unknown as { createServer: typeof net.createServer };
  const original = mod.createServer;
  mod.createServer = ((...args: Parameters<typeof net.createServer>) => {
    const server = original(...args);
    const listen = server.listen.bind(server) as (...a: unknown[]) => net.Server;
    (server as unknown as { listen: (...a: unknown[]) => net.Server }).listen = (port: unknown, ...more: unknown[]) => {
      const cb = more.find((a) => typeof a === 'function');
      return typeof port === 'number' ? listen({ port, host }, cb) : listen(port, ...more);
    };
    return server;
  }) as typeof net.createServer;
  try {
    return make();
  } finally {
    mod.createServer = original;
  }
}

/**
 * Makes every outgoing peer connection of `torrent` leave from `localAddress`:
 * its `_drain`, the only place that opens peer connections, sees a
 * `net.connect` that adds `localAddress`, for the length of the call.
 */
export function bindOutgoing(torrent: Torrent, localAddress: string | undefined): void {
  if (!localAddress) return;
  const t = internals(torrent);
  const drain = t._drain;
  t._drain = function boundDrain(this: TorrentInternals) {
    const connect = net.connect;
    net.connect = ((opts: net.NetConnectOpts, ...rest: unknown[]) => (connect as (...a: unknown[]) => net.Socket)({ ...opts, localAddress }, ...rest)) as typeof net.connect;
    try {
      return drain.call(this);
    } finally {
      net.connect = connect;
    }
  };
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

/**
 * Disconnects a peer whose message makes a handler throw, instead of letting
 * the exception end the process. bittorrent-protocol dispatches every message
 * from its socket's write path, where nothing catches: ut_metadata 4.0.3
 * throws on an extended message whose payload decodes to null, and one such
 * message from any peer ended the frontend (its seeder) or a node proxy.
 * Call right after `client.add()`; every message after a wire's handshake
 * goes through the guard. `onFault` hears the error and the peer's address.
 */
export function containPeerFaults(torrent: Torrent, onFault: (err: Error, remote: string) => void): void {
  reportFaultsTo(torrent, onFault);
  torrent.on('wire', (wire: Wire) => {
    const w = wire as unknown as { _onMessage?: (buf: Uint8Array) => void };
    const onMessage = w._onMessage;
    if (typeof onMessage !== 'function') return;
    w._onMessage = function (this: Wire, buf: Uint8Array) {
      try {
        onMessage.call(this, buf);
      } catch (err) {
        onFault(err instanceof Error ? err : new Error(String(err)), wire.remoteAddress ? `${wire.remoteAddress}:${wire.remotePort}` : 'unknown');
        wire.destroy();
      }
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
  const t = internals(torrent);
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
 * Makes every wire of `torrent` parse incoming messages without copying them,
 * and refuse messages longer than MAX_WIRE_MESSAGE_BYTES. bittorrent-protocol
 * 4 joins whatever is left of the last read with each new socket read (a
 * fresh buffer and a copy of every byte received, again for every read while
 * a large message is incomplete), and buffers a message of any length its
 * 4-byte prefix announces (up to 4 GiB a peer can make it hold); here a
 * message that lies inside one read is a view of it, only a message that
 * spans reads is copied, once, and a peer announcing an oversized message is
 * disconnected. Wires using encryption keep the library's own parser.
 */
export function parseWires(torrent: Torrent): void {
  torrent.on('wire', (wire: Wire) => {
    const w = wire as unknown as WireParser;
    const original = w._write;
    if (typeof original !== 'function' || !Array.isArray(w._buffer)) return;
    w._write = function (this: WireParser, data: Uint8Array, cb: (err: Error | null) => void) {
      if (this._encryptionMethod || this._cryptoSyncPattern) return original.call(this, data, cb);
      if (wire.destroyed) return cb(null);
      this._bufferSize += data.length;
      this._buffer.push(data);
      while (this._bufferSize >= this._parserSize) {
        const n = this._parserSize;
        this._bufferSize -= n;
        this._parser!(n === 0 ? new Uint8Array() : takeBytes(this, n));
      }
      if (this._parserSize > MAX_WIRE_MESSAGE_BYTES) {
        this._buffer = [];
        this._bufferSize = 0;
        wire.destroy();
      }
      cb(null);
    };
  });
}
