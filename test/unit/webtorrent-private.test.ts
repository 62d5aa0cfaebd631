/* eslint-disable no-restricted-properties -- this file drives the private-API wrappers through fakes of webtorrent's internals */
import { expect } from 'chai';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { coalescePicking, createClient, parseWires } from '../../protocol/webtorrent-private.js';
import { destroyClient, type Torrent, type TorrentOptions, type WebTorrentClient } from '../../protocol/webtorrent.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

type TestWire = EventEmitter & { _write(data: Uint8Array, cb: (err: Error | null) => void): void; destroy(): void };
const { default: Wire } = (await import('bittorrent-protocol' as string)) as { default: new () => TestWire };

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const message = (id: number, payload: Buffer) => Buffer.concat([u32(payload.length + 1), Buffer.from([id]), payload]);

/** A handshake, then HAVEs and PIECE messages of several sizes. */
function stream(): { bytes: Buffer; blocks: Buffer[] } {
  const handshake = Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), crypto.randomBytes(20), crypto.randomBytes(20)]);
  const parts: Buffer[] = [handshake];
  const blocks: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    parts.push(message(4, u32(i)));
    const block = crypto.randomBytes(i % 3 === 0 ? 16384 : 1 + ((i * 7919) % 20000));
    blocks.push(block);
    parts.push(message(7, Buffer.concat([u32(i), u32(0), block])));
  }
  return { bytes: Buffer.concat(parts), blocks };
}

/** A bittorrent-protocol wire, with parseWires applied (as when it joins a torrent) when `patched`. */
function newWire(patched: boolean): TestWire {
  const wire = new Wire();
  if (patched) {
    const torrent = new EventEmitter();
    parseWires(torrent as unknown as Torrent);
    torrent.emit('wire', wire);
  }
  return wire;
}

/** Feeds `bytes` to a wire in pieces of the given sizes (cycled) and records what it parsed. */
function parse(bytes: Buffer, sizes: number[], patched: boolean): { haves: number[]; pieces: string[] } {
  const wire = newWire(patched);
  const haves: number[] = [];
  const pieces: string[] = [];
  wire.on('have', (i: number) => haves.push(i));
  wire.on('piece', (i: number, o: number, b: Uint8Array) => pieces.push(`${i}+${o}:${crypto.createHash('sha256').update(b).digest('hex')}`));
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = sizes[k % sizes.length]!;
    wire._write(bytes.subarray(at, at + n), () => undefined);
    at += n;
  }
  wire.destroy();
  return { haves, pieces };
}

describe('webtorrent private API: parseWires', () => {
  it('parses exactly what the library parses, however the bytes are split across reads', () => {
    const { bytes, blocks } = stream();
    const reference = parse(bytes, [bytes.length], false);
    expect(reference.pieces).to.deep.equal(blocks.map((b, i) => `${i}+0:${crypto.createHash('sha256').update(b).digest('hex')}`));
    for (const sizes of [[1], [7, 3], [65536], [16397, 13], [100_000, 5, 70_000], [bytes.length]]) {
      expect(parse(bytes, sizes, true), `reads of ${sizes.join('/')}`).to.deep.equal(reference);
    }
  });

  it('hands a message inside one read to the parser as a view of that read (the library copies every read after a split)', () => {
    const { bytes } = stream();
    const split = 68 + 9 + 13 + 5000; // inside the first PIECE message
    const views = (patched: boolean): boolean[] => {
      const wire = newWire(patched);
      const seen: boolean[] = [];
      wire.on('piece', (_i: number, _o: number, b: Uint8Array) => seen.push(b.buffer === bytes.buffer));
      wire._write(bytes.subarray(0, split), () => undefined);
      wire._write(bytes.subarray(split), () => undefined);
      wire.destroy();
      return seen;
    };
    const patched = views(true);
    expect(patched).to.have.length(40);
    expect(patched.slice(1).every(Boolean), 'every message after the split is a view').to.equal(true);
    expect(views(false).slice(1).some(Boolean), 'the library copies them').to.equal(false);
  });
});

describe('webtorrent private API: coalescePicking', () => {
  /** A torrent with the members coalescePicking uses; counts picker passes and socket corks. */
  function fakeTorrent() {
    const sockets = [0, 1].map(() => ({
      corked: 0,
      maxCorked: 0,
      destroyed: false,
      cork() {
        this.maxCorked = Math.max(this.maxCorked, ++this.corked);
      },
      uncork() {
        this.corked--;
      },
    }));
    const t = Object.assign(new EventEmitter(), {
      destroyed: false,
      passes: 0,
      corkedDuringPass: [] as number[],
      _update() {},
      _updateWireWrapper() {
        t.passes++;
        t.corkedDuringPass.push(sockets.filter((s) => s.corked > 0).length);
      },
      _peers: new Map(sockets.map((conn, i) => [String(i), { conn }])),
    });
    return { t, sockets };
  }
  const turn = () => new Promise((r) => setImmediate(r));

  it('runs one picker pass per event-loop turn, with every peer socket corked until the next turn', async () => {
    const { t, sockets } = fakeTorrent();
    coalescePicking(t as unknown as Torrent);
    for (let i = 0; i < 10; i++) t._update();
    expect(t.passes).to.equal(0);
    await turn();
    expect(t.passes).to.equal(1);
    expect(t.corkedDuringPass).to.deep.equal([2]);
    await turn();
    expect(sockets.map((s) => s.corked)).to.deep.equal([0, 0]);
    t._update();
    await turn();
    expect(t.passes).to.equal(2);
  });

  it('makes no pass while held, and one at once on release', async () => {
    const { t } = fakeTorrent();
    const picking = coalescePicking(t as unknown as Torrent);
    picking.hold();
    t._update();
    await turn();
    await turn();
    expect(t.passes).to.equal(0);
    picking.release();
    await turn();
    expect(t.passes).to.equal(1);
    picking.release();
    await turn();
    expect(t.passes, 'a second release without a hold does nothing').to.equal(1);
  });
});

type Seeding = WebTorrentClient & { seed(input: Buffer, opts: { name: string; announce: string[]; path: string }, cb: (t: Torrent & { torrentFile: Uint8Array }) => void): void };
type PeerOf = { conn?: ({ _readableState?: { pipes?: unknown[] } } & Record<symbol, unknown>) | null; wire?: unknown };

/** True when `conn` reads into a buffer of its own (the receive path: net.connect's `onread`). */
function readsIntoOwnBuffer(conn: Record<symbol, unknown>): boolean {
  const sym = Object.getOwnPropertySymbols(conn).find((s) => s.description === 'kBuffer');
  return !!sym && conn[sym] instanceof Uint8Array;
}

/** The socket -> wire hop of every connected peer of `t`: true when the socket's reads go straight to the wire (the receive path, or a pipe). */
function direct(t: Torrent): boolean[] {
  const peers = (t as unknown as { _peers: Map<string, PeerOf> })._peers;
  return [...peers.values()].filter((p) => p.conn && p.wire).map((p) => readsIntoOwnBuffer(p.conn!) || p.conn!._readableState?.pipes?.[0] === p.wire);
}

describe('webtorrent private API: createClient({ unthrottled })', () => {
  const clients: WebTorrentClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => destroyClient(c)));
  });
  after(cleanupTmpDirs);

  /** `from` seeds 3 MiB of random bytes, `to` fetches them from it; resolves once `to` has every piece. */
  async function transfer(from: WebTorrentClient, to: WebTorrentClient): Promise<{ data: Buffer; seeded: Torrent; fetched: Torrent }> {
    const data = crypto.randomBytes(3 << 20);
    const seeded = await new Promise<Torrent & { torrentFile: Uint8Array }>((r) => (from as Seeding).seed(data, { name: 'img', announce: [], path: tmpDir() }, r));
    const fetched = to.add(Buffer.from(seeded.torrentFile), { path: tmpDir() } as TorrentOptions);
    const addPeer = () => (fetched as unknown as { addPeer(a: string): void }).addPeer(`127.0.0.1:${from.address()!.port}`);
    if (fetched.infoHash) addPeer();
    else fetched.once('infoHash', addPeer);
    await new Promise<void>((r) => (fetched.done ? r() : fetched.once('done', () => r())));
    return { data, seeded, fetched };
  }

  it('moves the bytes straight between socket and wire, and still counts them', async () => {
    const a = await createClient({ webSeeds: false, host: '127.0.0.1', unthrottled: true });
    const b = await createClient({ webSeeds: false, host: '127.0.0.1', unthrottled: true });
    clients.push(a, b);
    const { data, seeded, fetched } = await transfer(a, b);
    const piece = (i: number) => new Promise<Uint8Array>((resolve, reject) => fetched.store!.get(i, null, (err, buf) => (err || !buf ? reject(err ?? new Error(`piece ${i} missing`)) : resolve(buf))));
    const got = Buffer.concat(await Promise.all(fetched.pieces.map((_, i) => piece(i))));
    expect(got.equals(data)).to.equal(true);
    expect(fetched.wires.length, 'one connection, between the two').to.equal(1);
    expect(direct(fetched)).to.deep.equal([true]);
    expect(direct(seeded)).to.deep.equal([true]);
    const peers = (t: Torrent) => [...(t as unknown as { _peers: Map<string, PeerOf> })._peers.values()].filter((p) => p.conn && p.wire);
    expect(
      peers(fetched).map((p) => readsIntoOwnBuffer(p.conn!)),
      'the socket reads into a buffer of its own',
    ).to.deep.equal([true]);
    // Socket bytes, messages included, as webtorrent's own counters count them.
    expect(fetched.received, 'bytes counted on the way in').to.be.within(data.length, data.length * 1.01);
    expect(seeded.uploaded, 'bytes counted on the way out').to.be.within(data.length, data.length * 1.01);
  });

  it('leaves the throttles in place for a client that may be rate-limited', async () => {
    const a = await createClient({ webSeeds: false, host: '127.0.0.1' });
    const b = await createClient({ webSeeds: false, host: '127.0.0.1', unthrottled: true });
    clients.push(a, b);
    const { seeded, fetched } = await transfer(a, b);
    expect(direct(seeded)).to.deep.equal([false]);
    expect(direct(fetched)).to.deep.equal([true]);
  });
});
