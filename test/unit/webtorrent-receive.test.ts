/* eslint-disable no-restricted-properties -- this file drives the receive path through bittorrent-protocol's and torrent-piece's own classes */
import { expect } from 'chai';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PieceMemory } from '../../protocol/piece-memory.js';
import { MAX_WIRE_MESSAGE_BYTES, readInto, reportFaultsTo, usePieceMemory, WireReceiver, type WireParser } from '../../protocol/webtorrent-private-receive.js';
import type { Torrent, Wire } from '../../protocol/webtorrent.js';

type TestWire = Wire & WireParser & { request(index: number, offset: number, length: number, cb: (err: Error | null, buf?: Uint8Array) => void): void };
const { default: BtWire } = (await import('bittorrent-protocol' as string)) as { default: new () => TestWire };
interface TestPiece {
  length: number;
  reserve(): number;
  set(i: number, data: Uint8Array, source: unknown): boolean;
  flush(): Uint8Array | null;
}
const { default: Piece } = (await import('torrent-piece' as string)) as { default: new (length: number) => TestPiece };

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const message = (id: number, payload: Buffer) => Buffer.concat([u32(payload.length + 1), Buffer.from([id]), payload]);
const pieceMsg = (index: number, begin: number, block: Buffer) => message(7, Buffer.concat([u32(index), u32(begin), block]));
const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const HANDSHAKE = () => Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), crypto.randomBytes(20), crypto.randomBytes(20)]);
const UNCHOKE = message(1, Buffer.alloc(0));

/**
 * Feeds `bytes` to `rx` as socket reads of the given sizes (cycled), each
 * through one reused read buffer that is overwritten once the read was handed
 * on, as a socket reading into a buffer of its own does.
 */
function feed(rx: WireReceiver, bytes: Buffer, sizes: number[]): void {
  const readBuf = Buffer.alloc(Math.max(...sizes));
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, bytes.length - at);
    bytes.copy(readBuf, 0, at, at + n);
    rx.receive(readBuf.subarray(0, n));
    readBuf.fill(0xaa);
    at += n;
  }
}

/** A torrent with the members the receive path reads: its pieces. */
function torrentOf(pieces: TestPiece[]): Torrent {
  return Object.assign(new EventEmitter(), { pieces }) as unknown as Torrent;
}

describe('webtorrent private API: the receive path (WireReceiver)', () => {
  /** A handshake, then HAVEs, a bitfield and PIECE messages of several sizes. */
  function stream(): Buffer {
    const parts: Buffer[] = [HANDSHAKE(), message(5, crypto.randomBytes(40))];
    for (let i = 0; i < 40; i++) {
      parts.push(message(4, u32(i)));
      parts.push(pieceMsg(i, 0, crypto.randomBytes(i % 3 === 0 ? 16384 : 1 + ((i * 7919) % 20000))));
    }
    return Buffer.concat(parts);
  }

  /** What a wire saw: every HAVE, the bitfield and every block, hashed at the end (so a block overwritten after its delivery shows). */
  function record(wire: TestWire): () => { haves: number[]; bitfield: string; pieces: string[] } {
    const haves: number[] = [];
    let bitfield: Uint8Array | undefined;
    const blocks: [number, number, Uint8Array][] = [];
    wire.on('have', (i: number) => haves.push(i));
    wire.on('bitfield', (bf: { buffer: Uint8Array }) => (bitfield = bf.buffer));
    wire.on('piece', (i: number, o: number, b: Uint8Array) => blocks.push([i, o, b]));
    return () => ({ haves, bitfield: sha(bitfield ?? new Uint8Array()), pieces: blocks.map(([i, o, b]) => `${i}+${o}:${sha(b)}`) });
  }

  it('parses exactly what the library parses, however the reads split the bytes, though every read buffer is reused', () => {
    const bytes = stream();
    const ref = new BtWire();
    const refSeen = record(ref);
    // Its own copy: the library's bitfield is a view of the bytes it was given, and HAVEs set bits in it.
    ref._write(Buffer.from(bytes), () => undefined);
    const reference = refSeen();
    expect(reference.pieces).to.have.length(40);
    for (const sizes of [[1], [7, 3], [12, 1], [13], [65536], [16397, 13], [100_000, 5, 70_000], [bytes.length]]) {
      const wire = new BtWire();
      const seen = record(wire);
      const rx = new WireReceiver(wire, () => undefined);
      feed(rx, Buffer.from(bytes), sizes);
      expect(seen(), `reads of ${sizes.join('/')}`).to.deep.equal(reference);
      expect(rx.closed).to.equal(false);
    }
  });

  /** A wire past its handshake and unchoked, requesting every block of `piece` (index 0) as webtorrent does. */
  function requesting(piece: TestPiece, torrent = torrentOf([piece])): { wire: TestWire; rx: WireReceiver; got: Uint8Array[]; flushed: () => Uint8Array | null } {
    const wire = new BtWire();
    const rx = new WireReceiver(wire, () => torrent);
    feed(rx, Buffer.concat([HANDSHAKE(), UNCHOKE]), [1 << 16]);
    const got: Uint8Array[] = [];
    let flushed: Uint8Array | null = null;
    for (let r = piece.reserve(); r !== -1; r = piece.reserve()) {
      const offset = r * 16384;
      wire.request(0, offset, Math.min(16384, piece.length - offset), (err, buf) => {
        if (err || !buf) return;
        got.push(buf);
        if (piece.set(r, buf, wire)) flushed = piece.flush();
      });
    }
    return { wire, rx, got, flushed: () => flushed };
  }

  it('puts each requested block straight into its piece buffer, and the flush hands that buffer on without a copy', () => {
    const data = crypto.randomBytes(4 * 16384 + 1000);
    const piece = new Piece(data.length);
    const { rx, got, flushed } = requesting(piece);
    // Blocks out of order, across read boundaries.
    const order = [2, 0, 4, 1, 3];
    const bytes = Buffer.concat(order.map((b) => pieceMsg(0, b * 16384, data.subarray(b * 16384, (b + 1) * 16384))));
    feed(rx, bytes, [5000, 70_000]);
    expect(got).to.have.length(5);
    const whole = flushed();
    expect(whole && Buffer.from(whole).equals(data)).to.equal(true);
    for (const b of got) expect(b.buffer, 'every block is a view of the piece buffer').to.equal(whole!.buffer);
  });

  it("assembles pieces in buffers of the torrent's PieceMemory, and the next piece in one given back", () => {
    const memory = new PieceMemory();
    const receive = (data: Buffer): Uint8Array => {
      const piece = new Piece(data.length);
      const torrent = torrentOf([piece]);
      usePieceMemory(torrent, memory);
      const { rx, flushed } = requesting(piece, torrent);
      const blocks = [2, 0, 1].map((k) => pieceMsg(0, k * 16384, data.subarray(k * 16384, (k + 1) * 16384)));
      feed(rx, Buffer.concat(blocks), [7000]);
      return flushed()!;
    };
    const a = crypto.randomBytes(2 * 16384 + 100);
    const first = receive(a);
    expect(Buffer.from(first).equals(a)).to.equal(true);
    expect(memory.owns(first)).to.equal(true);
    expect(memory.give(first)).to.equal(true);
    const b = crypto.randomBytes(a.length);
    const second = receive(b);
    expect(second, 'the buffer given back').to.equal(first);
    expect(Buffer.from(second).equals(b)).to.equal(true);
    expect(memory.counts).to.deep.equal({ made: 1, reused: 1 });
  });

  it('gives an unrequested block, or a second copy of a block, a buffer of its own; blocks handed on stay as they were', () => {
    const data = crypto.randomBytes(2 * 16384);
    const piece = new Piece(data.length);
    const { wire, rx, got, flushed } = requesting(piece);
    const blocks: Uint8Array[] = [];
    wire.on('piece', (_i: number, _o: number, b: Uint8Array) => blocks.push(b));
    const bogus = crypto.randomBytes(16384);
    // Block 1 unasked for piece 0 of another length, block 0, block 0 again with other bytes, then block 1.
    feed(rx, Buffer.concat([pieceMsg(0, 0, data.subarray(0, 16384)), pieceMsg(0, 0, bogus), pieceMsg(0, 16384, data.subarray(16384))]), [3000]);
    expect(blocks).to.have.length(3);
    expect(Buffer.from(blocks[0]!).equals(data.subarray(0, 16384)), 'the first copy is intact').to.equal(true);
    expect(Buffer.from(blocks[1]!).equals(bogus)).to.equal(true);
    expect(blocks[1]!.buffer, 'the second copy is not in the piece buffer').to.not.equal(blocks[0]!.buffer);
    expect(got).to.have.length(2, 'only the requested copies answer the requests');
    expect(Buffer.from(flushed()!).equals(data)).to.equal(true);
  });

  it('gives a block a buffer of its own while the torrent has no pieces yet (no metadata)', () => {
    const wire = new BtWire();
    const blocks: Uint8Array[] = [];
    wire.on('piece', (_i: number, _o: number, b: Uint8Array) => blocks.push(b));
    const rx = new WireReceiver(wire, () => Object.assign(new EventEmitter(), { pieces: undefined }) as unknown as Torrent);
    const block = crypto.randomBytes(16384);
    feed(rx, Buffer.concat([HANDSHAKE(), pieceMsg(3, 0, block)]), [1 << 16]);
    expect(rx.closed).to.equal(false);
    expect(blocks.map((b) => Buffer.from(b).equals(block))).to.deep.equal([true]);
  });

  it('disconnects a peer that announces a message longer than the limit, before buffering it, and parses nothing after it', () => {
    for (const [id, sizes] of [
      [7, [1 << 16]],
      [5, [1 << 16]],
      [7, [3]],
    ] as const) {
      const wire = new BtWire();
      const haves: number[] = [];
      wire.on('have', (i: number) => haves.push(i));
      const rx = new WireReceiver(wire, () => undefined);
      feed(rx, Buffer.concat([HANDSHAKE(), u32(MAX_WIRE_MESSAGE_BYTES + 1), Buffer.from([id]), Buffer.alloc(64 * 1024), message(4, u32(1))]), [...sizes]);
      expect(rx.closed, `message id ${id}, reads of ${sizes[0]}`).to.equal(true);
      expect(wire._bufferSize).to.equal(0);
      expect(haves).to.deep.equal([]);
    }
  });

  it('disconnects a peer whose message makes a handler throw, and reports the fault', () => {
    const wire = new BtWire();
    const torrent = torrentOf([]);
    const faults: string[] = [];
    reportFaultsTo(torrent, (err) => faults.push(err.message));
    wire.on('have', () => {
      throw new Error('handler failed');
    });
    const rx = new WireReceiver(wire, () => torrent);
    feed(rx, Buffer.concat([HANDSHAKE(), message(4, u32(1)), message(4, u32(2))]), [1 << 16]);
    expect(faults).to.deep.equal(['handler failed'], 'one fault: nothing is parsed after it');
    expect(rx.closed).to.equal(true);
  });

  it('readInto: a connected socket reads every byte into one reused buffer, whatever the callback returns', async () => {
    const data = crypto.randomBytes(3 << 20);
    const server = net.createServer((c) => c.end(data));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      await new Promise((r) => sock.once('connect', r));
      const hash = crypto.createHash('sha256');
      const buffers = new Set<ArrayBufferLike>();
      let reads = 0;
      const ended = new Promise((r) => sock.once('end', r));
      const onRead = (d: Uint8Array) => {
        hash.update(d);
        buffers.add(d.buffer);
        reads++;
        return false; // what a socket's own onread callback returns to pause it
      };
      expect(readInto(sock, onRead as (d: Uint8Array) => void)).to.equal(true);
      await ended;
      expect(hash.digest('hex')).to.equal(sha(data));
      expect(reads).to.be.greaterThan(1);
      expect(buffers.size, 'every read in the same buffer').to.equal(1);
    } finally {
      sock.destroy();
      server.close();
    }
  });
});
