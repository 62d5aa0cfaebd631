/**
 * A node's receive path for peer connections (webtorrent 2.8.5,
 * bittorrent-protocol 4.1, torrent-piece 3; private API, as in
 * webtorrent-private.ts): every socket read lands in one buffer per connection
 * that is reused for the next read, and the block of a PIECE message is copied
 * from it straight into the buffer its piece is assembled in.
 *
 * Without it, every read is a new 64 KiB buffer (fresh memory the kernel
 * faults in and the collector frees again), the blocks are views of those
 * reads, and a verified piece is a second copy joined from its blocks. Here
 * the only memory a received piece takes is its own piece buffer, which the
 * piece's flush hands on as it is.
 *
 * Piece buffers come from the torrent's PieceMemory when it has one
 * (usePieceMemory), so a node reuses the memory of pieces it has written.
 *
 * Contract:
 * - messages are parsed exactly as bittorrent-protocol's handlers expect; a
 *   message longer than MAX_WIRE_MESSAGE_BYTES disconnects the peer before any
 *   of it is buffered; everything kept past a read is a copy (the read buffer
 *   is overwritten by the next read);
 * - a block goes into its piece buffer only when this wire has a request for
 *   exactly that block outstanding and no other block has claimed its place
 *   (so a peer cannot make the node hold memory it did not ask for, and no
 *   byte of a piece buffer is written twice: blocks handed on stay as they
 *   were received, for the peer guard's comparisons); anything else gets a
 *   buffer of its own and the piece is joined as before;
 * - a handler that throws disconnects the peer (the fault is reported as in
 *   containPeerFaults); encrypted wires keep the library's parser.
 */
import type net from 'node:net';
import type { PieceMemory } from './piece-memory.js';
import type { Torrent, Wire } from './webtorrent.js';

/**
 * The longest peer message accepted. The largest a kickswarm swarm sends are
 * PIECE messages of one 16 KiB block and bitfields of a few KiB; a peer that
 * announces more is disconnected before its message is buffered.
 */
export const MAX_WIRE_MESSAGE_BYTES = 1 << 20;
/** torrent-piece's block length: a piece's blocks are views of it at multiples of this. */
const BLOCK = 16 * 1024;
/** Bytes per socket read. */
const READ_BYTES = 64 * 1024;
/** PIECE: 4-byte length, id 7, index, begin, block. */
const PIECE_ID = 7;
const PIECE_HEADER = 13;

/** The bittorrent-protocol Wire members used here. */
export interface WireParser {
  _write(data: Uint8Array, cb: (err: Error | null) => void): void;
  _parser: ((buf: Uint8Array) => void) | null;
  _parserSize: number;
  _buffer: Uint8Array[];
  _bufferSize: number;
  _encryptionMethod?: number | null;
  _cryptoSyncPattern?: Uint8Array | null;
  _onMessageLength(buf: Uint8Array): void;
  _onPiece(index: number, offset: number, buf: Uint8Array): void;
  _parse(size: number, parser: (buf: Uint8Array) => void): void;
  requests: { piece: number; offset: number; length: number }[];
  destroyed: boolean;
  destroy(): void;
}

/** The torrent-piece Piece members used here. */
interface PieceInternals {
  length: number;
  sources: unknown[] | null;
  flush(): Uint8Array | null;
  _flushed: boolean;
  _chunks: number;
  _buffered: number;
  _buffer: (Uint8Array | undefined)[] | null;
  _cancellations: number[] | null;
}

interface Staging {
  buf: Buffer;
  /** Per 16 KiB block: 1 once a block has claimed the place. */
  claimed: Uint8Array;
}

const stagings = new WeakMap<PieceInternals, Staging>();
/** Fault reporters per torrent (containPeerFaults). */
const faultReporters = new WeakMap<Torrent, (err: Error, remote: string) => void>();
/** Where each torrent's piece buffers come from (usePieceMemory). */
const memories = new WeakMap<Torrent, PieceMemory>();

/** Remembers how faults of `torrent`'s peers are reported (used by containPeerFaults). */
export function reportFaultsTo(torrent: Torrent, onFault: (err: Error, remote: string) => void): void {
  faultReporters.set(torrent, onFault);
}

/**
 * Assembles `torrent`'s received pieces in buffers taken from `memory` (its
 * store gives them back once written and let go); without it each piece gets
 * a new buffer.
 */
export function usePieceMemory(torrent: Torrent, memory: PieceMemory): void {
  memories.set(torrent, memory);
}

/** A piece's flush that hands on the piece buffer itself when every block is in place in it. */
function stagedFlush(this: PieceInternals): Uint8Array | null {
  const s = stagings.get(this);
  const blocks = this._buffer;
  if (!s || !blocks || this._buffered !== this._chunks) return Object.getPrototypeOf(this).flush.call(this);
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i];
    if (!b || b.buffer !== s.buf.buffer || b.byteOffset !== s.buf.byteOffset + i * BLOCK) return Object.getPrototypeOf(this).flush.call(this);
  }
  // What torrent-piece's flush does, without joining the blocks into a new buffer.
  this._buffer = null;
  this._cancellations = null;
  this.sources = null;
  this._flushed = true;
  stagings.delete(this);
  return s.buf;
}

/** The place in its piece buffer for a block `wire` asked for; undefined when the block must have a buffer of its own. */
function claim(torrent: Torrent | undefined, w: WireParser, index: number, begin: number, length: number): Uint8Array | undefined {
  const piece = torrent?.pieces?.[index] as PieceInternals | null | undefined;
  if (!piece || piece._flushed || length === 0 || begin % BLOCK !== 0) return undefined;
  const end = begin + length;
  if (end > piece.length || (length % BLOCK !== 0 && end !== piece.length)) return undefined;
  if (!w.requests.some((r) => r.piece === index && r.offset === begin && r.length === length)) return undefined;
  let s = stagings.get(piece);
  if (!s) {
    const memory = memories.get(torrent!);
    s = { buf: memory ? memory.take(piece.length) : Buffer.allocUnsafe(piece.length), claimed: new Uint8Array(Math.ceil(piece.length / BLOCK)) };
    stagings.set(piece, s);
    piece.flush = stagedFlush;
  }
  const a = begin / BLOCK;
  const b = Math.ceil(end / BLOCK);
  for (let i = a; i < b; i++) if (s.claimed[i]) return undefined;
  s.claimed.fill(1, a, b);
  return s.buf.subarray(begin, end);
}

/** A copy of `d[from..to)` (a Buffer's own slice() would be a view of the reused read buffer). */
const copyOf = (d: Uint8Array, from: number, to: number): Buffer => Buffer.from(d.subarray(from, to));

const u32 = (d: Uint8Array, at: number) => ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;

/** Parses one connection's bytes into `w` (see the module doc); `torrentOf` is the torrent once the handshake named it. */
export class WireReceiver {
  private body: { dest: Uint8Array; at: number; index: number; begin: number } | undefined;
  private dropped = false;

  constructor(
    private readonly w: WireParser & Wire,
    private readonly torrentOf: () => Torrent | undefined,
  ) {}

  /** True once the peer was disconnected here (an oversized message, a handler that threw); later bytes are ignored. */
  get closed(): boolean {
    return this.dropped;
  }

  /** Takes the bytes of one read; `data` may be overwritten once this returns. */
  receive(data: Uint8Array): void {
    const { w } = this;
    if (this.dropped || w.destroyed) return;
    try {
      this.parse(data);
    } catch (err) {
      const t = this.torrentOf();
      const remote = w.remoteAddress ? `${w.remoteAddress}:${w.remotePort}` : 'unknown';
      if (t) faultReporters.get(t)?.(err instanceof Error ? err : new Error(String(err)), remote);
      this.drop();
    }
  }

  /** Disconnects the peer (the wire ends; its peer then closes the socket) and stops parsing. */
  private drop(): void {
    this.dropped = true;
    this.body = undefined;
    this.w._buffer = [];
    this.w._bufferSize = 0;
    this.w.destroy();
  }

  private parse(data: Uint8Array): void {
    const { w } = this;
    const proto = Object.getPrototypeOf(w) as WireParser;
    let off = 0;
    const n = data.length;
    while (off < n && !this.dropped && !w.destroyed) {
      const body = this.body;
      if (body) {
        const k = Math.min(body.dest.length - body.at, n - off);
        body.dest.set(data.subarray(off, off + k), body.at);
        body.at += k;
        off += k;
        if (body.at === body.dest.length) this.deliver();
        continue;
      }
      if (w._encryptionMethod || w._cryptoSyncPattern) {
        proto._write.call(w, copyOf(data, off, n), () => undefined);
        return;
      }
      if (w._bufferSize === 0 && w._parser === proto._onMessageLength && n - off >= PIECE_HEADER && data[off + 4] === PIECE_ID) {
        const len = u32(data, off);
        if (len > MAX_WIRE_MESSAGE_BYTES) return this.drop();
        if (len >= 9) {
          const index = u32(data, off + 5);
          const begin = u32(data, off + 9);
          const dest = claim(this.torrentOf(), w, index, begin, len - 9) ?? Buffer.allocUnsafe(len - 9);
          off += PIECE_HEADER;
          this.body = { dest, at: 0, index, begin };
          if (dest.length === 0) this.deliver();
          continue;
        }
      }
      if (w._parserSize > MAX_WIRE_MESSAGE_BYTES) return this.drop();
      if (w._parserSize === 0) {
        w._parser!(new Uint8Array());
        continue;
      }
      const k = Math.min(w._parserSize - w._bufferSize, n - off);
      w._buffer.push(copyOf(data, off, off + k));
      w._bufferSize += k;
      off += k;
      if (w._bufferSize === w._parserSize) {
        const msg = w._buffer.length === 1 ? w._buffer[0]! : Buffer.concat(w._buffer);
        w._buffer = [];
        w._bufferSize = 0;
        w._parser!(msg);
      }
    }
  }

  private deliver(): void {
    const { w } = this;
    const { dest, index, begin } = this.body!;
    this.body = undefined;
    w._parse(4, (Object.getPrototypeOf(w) as WireParser)._onMessageLength);
    w._onPiece(index, begin, dest);
  }
}

/** The private Socket members that make it read into a buffer of the caller's (what `net.connect({ onread })` sets). */
function readSymbols(conn: net.Socket): { buffer: symbol; callback: symbol } | undefined {
  const syms = Object.getOwnPropertySymbols(conn);
  const buffer = syms.find((s) => s.description === 'kBuffer');
  const callback = syms.find((s) => s.description === 'kBufferCb');
  const gen = syms.find((s) => s.description === 'kBufferGen');
  const handle = (conn as unknown as { _handle?: { useUserBuffer?: unknown } | null })._handle;
  if (!buffer || !callback || !gen || (conn as unknown as Record<symbol, unknown>)[gen] !== null || typeof handle?.useUserBuffer !== 'function') return undefined;
  return { buffer, callback };
}

/**
 * Makes `conn` read into one reused buffer and hand every read to `onRead`
 * (bytes valid only during the call), as `net.connect({ onread })` does, for
 * a socket that exists already (accepted or connected). Returns false, and
 * changes nothing, where this Node.js does not have what it needs.
 */
export function readInto(conn: net.Socket, onRead: (data: Uint8Array) => void): boolean {
  const syms = readSymbols(conn);
  if (!syms) return false;
  const buf = Buffer.allocUnsafe(READ_BYTES);
  // Bytes read before the switch (none when called on connect) go first.
  for (let chunk: Buffer | null; (chunk = conn.read() as Buffer | null) !== null;) onRead(chunk);
  const c = conn as unknown as Record<symbol, unknown> & { _handle: { useUserBuffer(b: Uint8Array): void } };
  c[syms.buffer] = buf;
  // Returns nothing: a callback that returns false would stop the socket reading.
  c[syms.callback] = (nread: number) => void onRead(buf.subarray(0, nread));
  c._handle.useUserBuffer(buf);
  conn.resume();
  return true;
}
