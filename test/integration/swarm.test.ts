import { expect } from 'chai';
import { SwarmProxy } from '../../node-installer/proxy/proxy.js';
import { silentLogger } from '../../server/log.js';
import { BadPeer } from '../helpers/swarm-badpeer.js';
import { until } from '../helpers/until.js';
import { TestFrontend, fetchBytes, infoHashOf, makeImage, makeTorrent, rejection } from '../helpers/swarm.js';
import { sha256 } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';

const MB = 1024 * 1024;

describe('swarm: tracker, seeder and node proxies on loopback', function () {
  this.timeout(30_000);
  let fe: TestFrontend;
  let dir: string;
  let cleanup: () => Promise<void>;
  const proxies: SwarmProxy[] = [];

  async function proxy(opts: Partial<ConstructorParameters<typeof SwarmProxy>[0]> = {}): Promise<{ p: SwarmProxy; url: string }> {
    const p = new SwarmProxy({ frontend: fe.url, log: silentLogger(), ...opts });
    proxies.push(p);
    const { url } = await p.start();
    return { p, url };
  }

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    fe = await new TestFrontend().start();
  });

  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await fe.close();
    await cleanup();
  });

  it('tracker refuses info-hashes it was not told about, and tracks allowed ones', async () => {
    const ih = Buffer.alloc(20, 7);
    const q = (h: Buffer) => `${fe.announce}?info_hash=${escape(h.toString('latin1'))}&peer_id=-TT0001-abcdefghijkl&port=6881&left=10&event=started`;
    const refused = await fetchBytes(q(ih));
    expect(refused.body.toString('latin1')).to.match(/failure reason\d+:torrent 0707070707070707070707070707070707070707 is not served by this tracker/);
    fe.tracker.allow(ih.toString('hex'));
    const ok = (await fetchBytes(q(ih))).body.toString('latin1');
    expect(ok).not.to.include('failure reason');
    expect(ok).to.include('8:interval');
    expect(fe.tracker.peers(ih.toString('hex'))).to.deep.equal({ seeders: 0, leechers: 1 });
    fe.tracker.disallow(ih.toString('hex'));
    expect((await fetchBytes(q(ih))).body.toString('latin1')).to.include('failure reason');
  });

  it('seeder + 3 proxies at once: every download is byte-identical to the image', async () => {
    const img = await makeImage(dir, 'centos', 6 * MB);
    const torrent = await makeTorrent(img.path, { announce: fe.announce, urlList: fe.imageUrl('centos') });
    const infoHash = await infoHashOf(torrent);
    await fe.publish('centos', img.path, torrent, infoHash);
    const nodes = await Promise.all([11, 12, 13].map((n) => proxy({ localAddress: `127.0.0.${n}` })));
    const bodies = await Promise.all(nodes.map(({ url }) => fetchBytes(`${url}install/images/centos`)));
    for (const b of bodies) {
      expect(b.status).to.equal(200);
      expect(b.headers['content-length']).to.equal(String(6 * MB));
      expect(sha256(b.body)).to.equal(img.sha256);
    }
    for (const { p } of nodes) {
      const [s] = p.stats();
      expect(s).to.include({ name: 'centos', infoHash, complete: true, fromWebSeed: 0, joins: 1, served: 6 * MB });
      expect(s!.fromPeers).to.be.at.least(6 * MB);
      expect(s!.fallbacks).to.deep.equal([]);
    }
    expect(fe.webSeedBytes.get('centos') ?? 0).to.equal(0);
    const counts = fe.tracker.peers(infoHash);
    expect(counts.seeders + counts.leechers).to.equal(4);
    expect(fe.sources).to.include.members(['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });

  it('a proxy is a full peer: it serves the image to other nodes while it lingers', async () => {
    const img = await makeImage(dir, 'debian', 3 * MB);
    const torrent = await makeTorrent(img.path, { announce: fe.announce, urlList: fe.imageUrl('debian') });
    const infoHash = await infoHashOf(torrent);
    await fe.publish('debian', img.path, torrent, infoHash);
    const a = await proxy({ localAddress: '127.0.0.41', linger: 30 });
    expect(sha256((await fetchBytes(`${a.url}install/images/debian`)).body)).to.equal(img.sha256);
    await fe.seeder.unseed('debian');
    const b = await proxy({ localAddress: '127.0.0.42', stallTimeout: 10 });
    expect(sha256((await fetchBytes(`${b.url}install/images/debian`)).body)).to.equal(img.sha256);
    const [sa] = a.p.stats();
    const [sb] = b.p.stats();
    expect(sb).to.include({ fromPeers: 3 * MB, fromWebSeed: 0 });
    expect(sa!.uploadedToPeers).to.equal(3 * MB);
    expect(fe.webSeedBytes.get('debian') ?? 0).to.equal(0);
  });

  it('tracker down: the download still completes from the web seed, verified', async () => {
    const img = await makeImage(dir, 'rhel', 3 * MB);
    const torrent = await makeTorrent(img.path, { announce: 'http://127.0.0.1:9/announce', urlList: fe.imageUrl('rhel') });
    fe.serveImage('rhel', img.path, torrent);
    const { p, url } = await proxy();
    const res = await fetchBytes(`${url}install/images/rhel`);
    expect(res.status).to.equal(200);
    expect(sha256(res.body)).to.equal(img.sha256);
    const [s] = p.stats();
    expect(s!.fallbacks[0]).to.match(/tracker unusable/);
    expect(s!.fromWebSeed).to.equal(3 * MB);
    expect(s!.fromPeers).to.equal(0);
  });

  it('tracker and web seed both down: the transfer is cut short in bounded time, never padded', async () => {
    const img = await makeImage(dir, 'gone', 1 * MB);
    const torrent = await makeTorrent(img.path, { announce: 'http://127.0.0.1:9/announce' });
    fe.serveImage('gone', `${dir}/no-such-file`, torrent);
    const { p, url } = await proxy({ stallTimeout: 0.5 });
    const t0 = Date.now();
    const err = await rejection(fetchBytes(`${url}install/images/gone`));
    expect(err.message).to.match(/closed|terminated|socket/i);
    expect(Date.now() - t0).to.be.below(15_000);
    expect(p.stats()[0]).to.include({ served: 0, fromWebSeed: 0 });
  });

  it('pieces no connected peer has come from the web seed without waiting for a stall', async () => {
    const img = await makeImage(dir, 'sles', 2 * MB);
    const torrent = await makeTorrent(img.path, { announce: fe.announce });
    fe.serveImage('sles', img.path, torrent);
    fe.tracker.allow(await infoHashOf(torrent));
    const { p, url } = await proxy({ stallTimeout: 2 });
    const res = await fetchBytes(`${url}install/images/sles`);
    expect(sha256(res.body)).to.equal(img.sha256);
    expect(p.stats()[0]).to.deep.include({ fromWebSeed: 2 * MB, fallbacks: ['pieces no connected peer has came from the web seed'] });
  });

  it('a peer that advertises every piece but sends none: the web seed takes over after stallTimeout', async () => {
    const img = await makeImage(dir, 'silent', 2 * MB);
    const torrent = await makeTorrent(img.path, { announce: fe.announce, urlList: fe.imageUrl('silent') });
    fe.serveImage('silent', img.path, torrent);
    const ih = await infoHashOf(torrent);
    fe.tracker.allow(ih);
    const mute = await BadPeer.start(img.path, torrent, 'silent');
    try {
      await until('the silent peer to announce itself', () => fe.tracker.peers(ih).seeders >= 1);
      const { p, url } = await proxy({ stallTimeout: 1.5 });
      const t0 = Date.now();
      const res = await fetchBytes(`${url}install/images/silent`);
      expect(sha256(res.body)).to.equal(img.sha256);
      expect(Date.now() - t0).to.be.at.least(1400);
      expect(p.stats()[0]).to.deep.include({ fromPeers: 0, fromWebSeed: 2 * MB, fallbacks: ['no piece verified for 1.5s'] });
    } finally {
      await mute.close();
    }
  });

  it('a peer sending corrupt pieces is banned and corrupts no download', async () => {
    const img = await makeImage(dir, 'bad', 4 * MB);
    const torrent = await makeTorrent(img.path, { announce: fe.announce, urlList: fe.imageUrl('bad') });
    const ih = await infoHashOf(torrent);
    await fe.publish('bad', img.path, torrent, ih);
    const seedersBefore = fe.tracker.peers(ih).seeders;
    const bad = await BadPeer.start(img.path, torrent);
    try {
      await until('the corrupting peer to announce itself', () => fe.tracker.peers(ih).seeders > seedersBefore);
      const nodes = await Promise.all([21, 22].map((n) => proxy({ localAddress: `127.0.0.${n}`, stallTimeout: 3 })));
      const bodies = await Promise.all(nodes.map(({ url }) => fetchBytes(`${url}install/images/bad`)));
      for (const b of bodies) expect(sha256(b.body)).to.equal(img.sha256);
      expect(bad.uploaded).to.be.above(0);
      const stats = nodes.map(({ p }) => p.stats()[0]!);
      const failures = stats.reduce((n, s) => n + s.hashFailures, 0);
      expect(failures).to.be.above(0);
      for (const s of stats) if (s.hashFailures > 0) expect(s.bannedPeers).to.deep.equal([bad.peerId]);
    } finally {
      await bad.close();
    }
  });
});
