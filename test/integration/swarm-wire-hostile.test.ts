import { expect } from 'chai';
import net from 'node:net';
import { silentLogger } from '../../server/log.js';
import { SwarmProxy } from '../../node-installer/proxy/proxy.js';
import { SwarmSeeder } from '../../server/swarm/seeder.js';
import { TestFrontend, fetchBytes, infoHashOf, makeImage, makeTorrent } from '../helpers/swarm.js';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../../bench/lib/ports.js';

function handshake(infoHash: string): Buffer {
  return Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), Buffer.from(infoHash, 'hex'), Buffer.from('-FZ0001-abcdefghijkl')]);
}

function have(index: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt32BE(5, 0);
  b[4] = 4;
  b.writeUInt32BE(index >>> 0, 5);
  return b;
}

/** An extended message for local extension 1 (ut_metadata) with an empty payload: ut_metadata 4.0.3 throws on it. */
const EMPTY_UT_METADATA = Buffer.from([0, 0, 0, 2, 20, 1]);

/**
 * Connects (to `host`, loopback by default), sends `first`, then `then` once the peer sent more than its
 * handshake (the wire has joined the torrent), and resolves with what happened within
 * `ms`: closed by the peer or still open, and bytes received.
 */
function exchange(port: number, first: Buffer, then: Buffer, ms: number, host = '127.0.0.1'): Promise<{ closed: boolean; received: number }> {
  return new Promise((resolve) => {
    let received = 0;
    const sock = net.connect({ host, port }, () => sock.write(first));
    let sent = false;
    const done = (closed: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ closed, received });
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('data', (d: Buffer) => {
      received += d.length;
      // More than the 68-byte handshake (its bitfield): the wire has joined the torrent.
      if (!sent && received > 68) {
        sent = true;
        sock.write(then);
      }
    });
    sock.on('close', () => done(true));
    sock.on('error', () => undefined);
  });
}

/** Seeds a 300 kB image from `dir` (no super-seeding); resolves with the seeder's port and the info-hash. */
async function seedImage(seeder: SwarmSeeder, dir: string): Promise<{ port: number; hash: string }> {
  const img = await makeImage(dir, 'img', 300_000);
  const torrent = await makeTorrent(img.path, { announce: 'http://127.0.0.1:9/announce' });
  const { port } = await seeder.start();
  await seeder.seed({ name: 'img', path: img.path, torrent });
  return { port, hash: await infoHashOf(torrent) };
}

/** Sends `bad` after a handshake and expects a disconnect, then expects a well-behaved peer to be served. */
async function dropsThenServes(port: number, hash: string, bad: Buffer, host?: string): Promise<void> {
  const dropped = await exchange(port, handshake(hash), bad, 5000, host);
  expect(dropped.closed, 'the peer is disconnected').to.equal(true);
  const good = await exchange(port, handshake(hash), have(1), 1000, host);
  expect(good.closed).to.equal(false);
  expect(good.received, 'a handshake and bitfield come back').to.be.greaterThan(68);
}

/** Runs `fn` against a seeder of a 300 kB image (no super-seeding), closed afterwards. */
async function withSeeder(fn: (port: number, hash: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir();
  const seeder = new SwarmSeeder({ log: silentLogger(), superSeed: false });
  try {
    const { port, hash } = await seedImage(seeder, dir);
    await fn(port, hash);
  } finally {
    await seeder.close();
    await cleanup();
  }
}

describe('seeder under hostile wire messages', () => {
  it('drops a peer that announces a piece index beyond the torrent, and keeps serving', () =>
    withSeeder(async (port, hash) => {
      // Before the check, this HAVE grew the rarity map to 2^32 entries and the next peer ran the process out of memory.
      await dropsThenServes(port, hash, have(0xffffffff));
      expect(process.memoryUsage().heapUsed).to.be.below(1024 ** 3);
    }));

  it('drops a peer that announces a message longer than 1 MiB instead of buffering it', () =>
    withSeeder(async (port, hash) => {
      const huge = Buffer.alloc(5 + 65536);
      huge.writeUInt32BE(0x40000000, 0); // a 1 GiB message, whose first 64 KiB follow
      huge[4] = 7;
      await dropsThenServes(port, hash, huge);
    }));

  it('drops a peer whose message makes an extension throw, and keeps serving', () => withSeeder((port, hash) => dropsThenServes(port, hash, EMPTY_UT_METADATA)));
});

describe('node proxy under hostile wire messages', function () {
  this.timeout(30_000);

  it('drops a peer whose message makes an extension throw, and keeps serving', async () => {
    const { dir, cleanup } = await tempDir();
    const fe = await new TestFrontend().start();
    const node = '127.0.0.32';
    const peerPort = await freePort();
    const proxy = new SwarmProxy({ frontend: fe.url, log: silentLogger(), localAddress: node, peerPort, linger: 60 });
    try {
      const img = await makeImage(dir, 'img', 600_000);
      const torrent = await makeTorrent(img.path, { announce: fe.announce, urlList: fe.imageUrl('img') });
      const hash = await infoHashOf(torrent);
      await fe.publish('img', img.path, torrent, hash);
      const { url } = await proxy.start();
      // A first read joins the swarm; the session lingers, so the proxy takes peers for the image.
      expect((await fetchBytes(`${url}install/images/img`, { headers: { range: 'bytes=0-999' } })).status).to.equal(206);
      await dropsThenServes(peerPort, hash, EMPTY_UT_METADATA, node);
      const all = await fetchBytes(`${url}install/images/img`);
      expect(all.body.equals(img.data), 'the image still comes through the proxy').to.equal(true);
    } finally {
      await proxy.close();
      await fe.close();
      await cleanup();
    }
  });
});
