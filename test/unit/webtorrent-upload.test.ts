import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { expect } from 'chai';
import { createClient } from '../../protocol/webtorrent-private.js';
import { boundUploads, UPLOAD_LIMITS, type UploadWire } from '../../protocol/webtorrent-private-upload.js';
import { destroyClient, type Torrent, type WebTorrentClient, type Wire } from '../../protocol/webtorrent.js';
import { until } from '../helpers/until.js';

/** A wire with the members boundUploads uses: it answers a request when the test says so. */
function fakeWire(): UploadWire & { answered: string[]; buffered: number } {
  const w = {
    answered: [] as string[],
    buffered: 0,
    peerRequests: [] as string[],
    destroyed: false,
    get _readableState() {
      return { buffered: w.buffered };
    },
    _onRequest(i: number, o: number, l: number) {
      w.peerRequests.push(`${i}:${o}:${l}`);
    },
    _onCancel(i: number, o: number, l: number) {
      w.peerRequests = w.peerRequests.filter((r) => r !== `${i}:${o}:${l}`);
    },
    piece(i: number, o: number, b: Uint8Array) {
      w.answered.push(`${i}:${o}:${b.length}`);
    },
    destroy() {
      w.destroyed = true;
    },
    on() {
      return w;
    },
  };
  return w;
}

/** Answers the oldest request the wire took, as the store does when it has read the block. */
function answerOne(w: ReturnType<typeof fakeWire>): void {
  const r = w.peerRequests.shift()!;
  const [i, o, l] = String(r).split(':').map(Number);
  w.piece(i!, o!, new Uint8Array(l!));
}

describe('webtorrent private API: what a peer can make a client hold (boundUploads)', () => {
  const limits = { backlogBytes: 64 * 1024, maxUnanswered: 2, maxWaiting: 5 };

  it('takes requests while there is room, keeps the rest waiting in order, and answers them as the socket drains', async () => {
    const w = fakeWire();
    const conn = Object.assign(new EventEmitter(), { writableLength: 0 }) as unknown as net.Socket & { writableLength: number };
    boundUploads(w, conn, limits);
    for (let k = 0; k < 5; k++) w._onRequest(0, k * 16384, 16384);
    expect(w.peerRequests, 'two being read').to.have.length(2);
    answerOne(w);
    answerOne(w);
    await until('the next two taken', () => w.peerRequests.length === 2);
    (conn as { writableLength: number }).writableLength = 64 * 1024; // the peer stopped reading
    answerOne(w);
    answerOne(w);
    await Promise.resolve();
    expect(w.peerRequests, 'nothing taken while the socket is full').to.have.length(0);
    w._onCancel(0, 4 * 16384, 16384); // the peer no longer wants the waiting one
    w._onRequest(0, 5 * 16384, 16384);
    (conn as { writableLength: number }).writableLength = 0;
    conn.emit('drain');
    await until('the waiting one taken', () => w.peerRequests.length === 1);
    expect(w.peerRequests).to.deep.equal([`0:${5 * 16384}:16384`]);
    expect(w.answered).to.deep.equal([0, 1, 2, 3].map((k) => `0:${k * 16384}:16384`));
  });

  it('disconnects a peer with more requests waiting than allowed', () => {
    const w = fakeWire();
    const conn = Object.assign(new EventEmitter(), { writableLength: 1 << 30 }) as unknown as net.Socket;
    boundUploads(w, conn, limits);
    for (let k = 0; k < 5; k++) w._onRequest(0, 0, 16384);
    expect(w.destroyed).to.equal(false);
    w._onRequest(0, 0, 16384);
    expect(w.destroyed).to.equal(true);
  });

  describe('a seeding client and a raw peer that floods it with requests', () => {
    let client: WebTorrentClient | undefined;
    after(async () => {
      if (client) await destroyClient(client);
    });

    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n >>> 0);
      return b;
    };
    const msg = (id: number, ...nums: number[]) => Buffer.concat([u32(1 + 4 * nums.length), Buffer.from([id]), ...nums.map(u32)]);

    it('queues at most its backlog for a peer that does not read, and answers every request once it does', async function () {
      this.timeout(120_000);
      const PIECE = 256 * 1024;
      const data = crypto.randomBytes(256 * PIECE);
      client = await createClient({ webSeeds: false, host: '127.0.0.1' });
      type Seeding = { seed(input: Buffer, opts: object, cb: (t: Torrent) => void): void };
      const torrent = await new Promise<Torrent>((r) => (client as unknown as Seeding).seed(data, { name: 'img', announce: [], path: os.tmpdir(), pieceLength: PIECE }, r));
      const sock = net.connect(client.address()!.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), Buffer.from(torrent.infoHash, 'hex'), crypto.randomBytes(20)]));
      // Read until the seeder unchokes (handshake, bitfield, unchoke), then stop reading.
      let got = Buffer.alloc(0);
      const onData = (d: Buffer) => (got = Buffer.concat([got, d]));
      sock.on('data', onData);
      const sent = (id: number) => {
        for (let at = 68; at + 5 <= got.length; at += 4 + got.readUInt32BE(at)) if (got[at + 4] === id) return true;
        return false;
      };
      await until('the bitfield', () => sent(5));
      sock.write(msg(2)); // interested
      const unchoked = () => sent(1);
      await until('the seeder unchokes', unchoked);
      sock.off('data', onData);
      sock.pause();
      const N = 4096; // every block of the 64 MiB torrent, asked for at once
      const requests: Buffer[] = [];
      for (let k = 0; k < N; k++) requests.push(msg(6, k >> 4, (k & 15) * 16384, 16384));
      sock.write(Buffer.concat(requests));
      sock.write(msg(4, 3)); // a HAVE after the requests: the seeder has parsed them all once it sees it
      const wire = await until('the seeder wire', () => torrent.wires[0]);
      await until('every request parsed', () => (wire as Wire & { peerPieces: { get(i: number): boolean } }).peerPieces.get(3));
      const w = wire as unknown as UploadWire & { uploaded: number };
      await until('the requests taken are answered', () => w.peerRequests.length === 0);
      // The backlog, and what the kernel's socket buffers took; without the bound all 64 MiB.
      expect(w.uploaded, 'bytes the seeder answered with before the peer read anything').to.be.below(UPLOAD_LIMITS.backlogBytes + (12 << 20));
      // The peer reads: every request is answered.
      let bytes = 0;
      sock.on('data', (d: Buffer) => (bytes += d.length));
      sock.resume();
      await until('every block sent', () => bytes >= N * (13 + 16384), 60_000);
      expect(wire.destroyed).to.equal(false);
      sock.destroy();
    });
  });
});
