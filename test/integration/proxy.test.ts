import { expect } from 'chai';
import { SwarmProxy } from '../../node-installer/proxy/proxy.js';
import { silentLogger } from '../../server/log.js';
import { TestFrontend, fetchBytes, infoHashOf, makeImage, makeTorrent, rawRequest } from '../helpers/swarm.js';
import { until } from '../helpers/until.js';
import { sha256 } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';

const MB = 1024 * 1024;
/** Long enough that the next request of a test comes within it even on a busy machine. */
const LINGER_S = 2;

describe('proxy: the node-local HTTP side', function () {
  this.timeout(20_000);
  let fe: TestFrontend;
  let cleanup: () => Promise<void>;
  let proxy: SwarmProxy;
  let url: string;
  let img: { path: string; data: Buffer; sha256: string };

  before(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    fe = await new TestFrontend().start();
    img = await makeImage(t.dir, 'base', 3 * MB + 12345);
    const torrent = await makeTorrent(img.path, { announce: fe.announce, urlList: fe.imageUrl('base') });
    await fe.publish('base', img.path, torrent, await infoHashOf(torrent));
    fe.serveImage('plain', img.path);
    proxy = new SwarmProxy({ frontend: fe.url, log: silentLogger(), localAddress: '127.0.0.31', linger: LINGER_S });
    ({ url } = await proxy.start());
  });

  after(async () => {
    await proxy.close();
    await proxy.close();
    await fe.close();
    await cleanup();
  });

  const stat = (name: string) => proxy.stats().find((s) => s.name === name)!;
  /** True when the image is in no swarm: every join was followed by a leave. */
  const outOfSwarm = (name: string) => {
    const s = stat(name);
    return s.joins === s.leaves;
  };

  it('listens on loopback only and answers the image length on HEAD without joining the swarm', async () => {
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetchBytes(`${url}install/images/base`, { method: 'HEAD' });
    expect(res.status).to.equal(200);
    expect(res.headers['content-length']).to.equal(String(img.data.length));
    expect(res.headers['accept-ranges']).to.equal('bytes');
    expect(res.body.length).to.equal(0);
    expect(stat('base')).to.include({ joins: 0, requests: 1, served: 0 });
  });

  it('serves Range requests with 206 and exactly the asked bytes', async () => {
    const cases: [string, number, number][] = [
      ['bytes=1000-99999', 1000, 99999],
      ['bytes=0-0', 0, 0],
      ['bytes=-100', img.data.length - 100, img.data.length - 1],
      [`bytes=${3 * MB}-`, 3 * MB, img.data.length - 1],
      [`bytes=65535-65536`, 65535, 65536],
    ];
    for (const [range, start, end] of cases) {
      const res = await fetchBytes(`${url}install/images/base`, { headers: { range } });
      expect(res.status, range).to.equal(206);
      expect(res.headers['content-range'], range).to.equal(`bytes ${start}-${end}/${img.data.length}`);
      expect(res.body.equals(img.data.subarray(start, end + 1)), range).to.equal(true);
    }
    const bad = await fetchBytes(`${url}install/images/base`, { headers: { range: `bytes=${img.data.length}-` } });
    expect(bad.status).to.equal(416);
    expect(bad.headers['content-range']).to.equal(`bytes */${img.data.length}`);
    const multi = await fetchBytes(`${url}install/images/base`, { headers: { range: 'bytes=0-1,5-6' } });
    expect(multi.status).to.equal(200);
    expect(sha256(multi.body)).to.equal(img.sha256);
  });

  it('two concurrent requests share one torrent, which lingers and then leaves', async () => {
    await until("the previous test's session to linger out", () => outOfSwarm('base'), 4 * LINGER_S * 1000);
    const before = stat('base').joins;
    const [a, b] = await Promise.all([fetchBytes(`${url}install/images/base`), fetchBytes(`${url}install/images/base`, { headers: { range: 'bytes=100-2000000' } })]);
    expect(sha256(a.body)).to.equal(img.sha256);
    expect(b.body.equals(img.data.subarray(100, 2000001))).to.equal(true);
    expect(stat('base').joins).to.equal(before + 1);
    await fetchBytes(`${url}install/images/base`, { headers: { range: 'bytes=0-9' } });
    expect(stat('base').joins, 'still lingering').to.equal(before + 1);
    await until('the linger to run out', () => outOfSwarm('base'), 4 * LINGER_S * 1000);
    await fetchBytes(`${url}install/images/base`, { headers: { range: 'bytes=0-9' } });
    expect(stat('base').joins, 'linger over: joined again').to.equal(before + 2);
  });

  it('moves an image without a torrent over plain HTTP, Range included', async () => {
    const whole = await fetchBytes(`${url}install/images/plain`);
    expect(whole.status).to.equal(200);
    expect(sha256(whole.body)).to.equal(img.sha256);
    const part = await fetchBytes(`${url}install/images/plain`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).to.equal(206);
    expect(part.body.equals(img.data.subarray(10, 20))).to.equal(true);
    expect(stat('plain').fallbacks).to.deep.equal(['no torrent for plain (HTTP 404)']);
    expect(stat('plain').fromWebSeed).to.equal(img.data.length + 10);
    expect((await fetchBytes(`${url}install/images/nonesuch`)).status).to.equal(404);
  });

  it('answers 4xx for bad names, bad paths and methods', async () => {
    const cases: [string, string, number][] = [
      ['GET', 'install/images/..%2f..%2fetc%2fpasswd', 400],
      ['GET', 'install/images/.hidden', 400],
      ['GET', 'install/images/', 400],
      ['GET', 'install/images/a%ZZ', 400],
      ['GET', 'install/images/a%20b', 400],
      ['GET', 'install/../etc/passwd', 400],
      ['GET', 'install/images/x/../../sbin/echo', 400],
      ['GET', 'etc/passwd', 404],
      ['GET', '', 404],
      ['POST', 'install/images/base', 405],
      ['DELETE', 'install/images/base', 405],
    ];
    for (const [method, path, status] of cases) {
      const res = await rawRequest(url, `/${path}`, { method });
      expect(res.status, `${method} /${path}`).to.equal(status);
      expect(res.body.toString().split('\n').filter(Boolean)).to.have.length(1);
    }
  });

  it('passes other /install/* requests through unchanged, from the node address', async () => {
    const res = await rawRequest(url, '/install/sbin/echo?x=1&y=%20z', {
      method: 'POST',
      headers: {
        'x-rhn-provisioning-mac-0': 'eth0 52:54:00:12:34:56',
        'content-type': 'text/plain',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': 'secret',
        'keep-alive': 'timeout=5',
      },
      body: 'hello frontend',
    });
    expect(res.status).to.equal(200);
    expect(res.headers['x-echo']).to.equal('yes');
    const echo = JSON.parse(res.body.toString());
    expect(echo).to.include({ method: 'POST', url: '/install/sbin/echo?x=1&y=%20z', body: 'hello frontend' });
    expect(echo.headers['x-rhn-provisioning-mac-0']).to.equal('eth0 52:54:00:12:34:56');
    expect(echo.headers).not.to.have.property('x-drop-me');
    expect(echo.headers).not.to.have.property('keep-alive');
    expect(echo.remote.replace(/^::ffff:/, '')).to.equal('127.0.0.31');
    const torrent = await fetchBytes(`${url}install/images/base.torrent`);
    expect(torrent.status).to.equal(200);
    expect(torrent.headers['content-type']).to.equal('application/x-bittorrent');
  });

  it('answers 502 in one line when the frontend is unreachable', async () => {
    const dead = new SwarmProxy({ frontend: 'http://127.0.0.1:9', log: silentLogger() });
    const { url: deadUrl } = await dead.start();
    try {
      for (const path of ['install/images/base', 'install/sbin/kickstart.cgi']) {
        const res = await fetchBytes(`${deadUrl}${path}`);
        expect(res.status, path).to.equal(502);
        expect(res.body.toString()).to.match(/^frontend unreachable.*ECONNREFUSED\n$/);
      }
    } finally {
      await dead.close();
    }
  });
});
