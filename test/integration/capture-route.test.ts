import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Router from '@koa/router';
import { expect } from 'chai';
import pino from 'pino';
import { writeImage } from '../../protocol/image-format.js';
import { KICKSTART_PATH } from '../../protocol/api.js';
import { CAPTURE_PATH, REPORT_PATH } from '../../protocol/install.js';
import type { NodeName } from '../../protocol/node.js';
import { SECRETS_PATH } from '../../protocol/session.js';
import type { NodeRecord } from '../../server/inventory/types.js';
import { imageAuthorizer } from '../../server/http/image-access.js';
import { imageRoutes } from '../../server/http/routes/images.js';
import { lastInstalledImage } from '../../server/cluster/installed-image.js';
import { installRoutes } from '../../server/http/routes/install.js';
import { ImageStore } from '../../server/images/store.js';
import { Metrics } from '../../server/metrics.js';
import { type TestServer, startTestServer } from '../helpers/http.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const KiB = 1024;

interface Rig {
  s: TestServer;
  images: ImageStore;
  metrics: Metrics;
}

/** A test server whose install routes use its own inventory and policy (mounted once they exist). */
async function startRig(maxCaptureBytes?: number, maxConcurrentCaptures?: number, sessions = false): Promise<Rig> {
  const mount = new Router();
  // A node installs the image its `image.name` attribute names, as the renderer would answer.
  const imageFor = (n: NodeRecord) => (n.attrs['image.name'] ? { name: n.attrs['image.name'], method: 'http' } : undefined);
  const s = await startTestServer({ extraRouters: [mount], sessions, imageFor });
  const images = new ImageStore(path.join(tmpDir(), 'images'), { frontendUrl: 'http://127.0.0.1:8080' });
  const metrics = new Metrics();
  const secrets = (n: NodeRecord) => [{ path: '/etc/ssh/ssh_host_ed25519_key', mode: '0600', content: `key of ${n.name}\n` }];
  const r = installRoutes({ inventory: s.inventory, policy: s.policy, images, secrets, metrics, log: pino({ level: 'silent' }), maxCaptureBytes, maxConcurrentCaptures });
  mount.use(r.routes());
  const ir = imageRoutes({ store: images, torrentFor: (n) => images.servedTorrent(n, s.url), authorize: imageAuthorizer(s.policy), log: pino({ level: 'silent' }) });
  mount.use(ir.routes());
  return { s, images, metrics };
}

async function makeImage(rawBytes: Buffer): Promise<Buffer> {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'disk.raw'), rawBytes);
  await writeImage(path.join(dir, 'disk.raw'), path.join(dir, 'disk.ksimg'), { chunkSize: 64 * KiB });
  return fs.readFileSync(path.join(dir, 'disk.ksimg'));
}

function randomDisk(): Buffer {
  return Buffer.concat([crypto.randomBytes(200 * KiB), Buffer.alloc(256 * KiB), Buffer.from('root filesystem '.repeat(8000))]);
}

const events = (s: TestServer, name: string, kind: string) =>
  s.inventory
    .events(name as NodeName, 100)
    .filter((e) => e.kind === kind)
    .map((e) => e.message);

describe('http: report.cgi', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig();
    rig.s.addNode('compute-0-0', '52:54:00:00:01:01', '127.0.3.1', 'install');
    rig.s.addNode('compute-0-1', '52:54:00:00:01:02', '127.0.3.2', 'install');
  });
  afterEach(() => rig.s.close());
  after(cleanupTmpDirs);

  it('stores progress of the node found by source IP and records only state changes', async () => {
    const send = (body: object, from = '127.0.3.1') => rig.s.request({ method: 'POST', path: REPORT_PATH, body, from });
    let r = await send({ state: 'profile' });
    expect(r.status).to.equal(200);
    expect(r.json()).to.deep.equal({ node: 'compute-0-0', state: 'profile', bootAction: 'install' });
    await send({ state: 'downloading', bytesDone: 100, bytesTotal: 1000, rate: 50, bytesFromFrontend: 60, bytesFromPeers: 40 });
    await send({ state: 'downloading', bytesDone: 500, bytesTotal: 1000, rate: 400 });
    r = await send({ state: 'writing', bytesDone: 700 });
    expect(r.status).to.equal(200);
    const n = rig.s.inventory.requireNode('compute-0-0');
    expect(n.install).to.include({ state: 'writing', bytesDone: 700, bytesTotal: 1000, bytesFromFrontend: 60, bytesFromPeers: 40 });
    expect(n.install!.startedAt <= n.install!.updatedAt).to.equal(true);
    expect(events(rig.s, 'compute-0-0', 'install')).to.deep.equal(['install start -> profile', 'install profile -> downloading', 'install downloading -> writing']);
    expect(rig.s.inventory.requireNode('compute-0-1').install).to.equal(null);
    const m = await rig.metrics.installReports.get();
    expect(Object.fromEntries(m.values.map((v) => [v.labels.state, v.value]))).to.deep.equal({ profile: 1, downloading: 2, writing: 1 });
  });

  it('records failed with its reason and keeps the boot action', async () => {
    await rig.s.request({ method: 'POST', path: REPORT_PATH, body: { state: 'post' }, from: '127.0.3.2' });
    await rig.s.request({ method: 'POST', path: REPORT_PATH, body: { state: 'failed', reason: '%post script 1 exited 3' }, from: '127.0.3.2' });
    const n = rig.s.inventory.requireNode('compute-0-1');
    expect(n.install).to.include({ state: 'failed', reason: '%post script 1 exited 3' });
    expect(n.bootAction).to.equal('install');
    expect(events(rig.s, 'compute-0-1', 'install').at(-1)).to.equal('install post -> failed: %post script 1 exited 3');
  });

  it('a done install records the exact image version and SHA-256 its kickstart named; it outlives the next install until that succeeds', async () => {
    const directive = (ref: string, sha: string) => `%addon org_kickswarm\nimage --name=${ref} --sha256=${sha} --method=torrent --target=/dev/sda\n%end\n`;
    const [sha1, sha2] = ['a1'.repeat(32), 'b2'.repeat(32)];
    const send = (state: string, from = '127.0.3.1') => rig.s.request({ method: 'POST', path: REPORT_PATH, body: { state }, from });
    rig.s.renderer.appendText = directive('gold@1', sha1);
    expect((await rig.s.request({ path: KICKSTART_PATH, from: '127.0.3.1' })).status).to.equal(200);
    await send('profile');
    expect(rig.s.inventory.requireNode('compute-0-0').install!.image).to.equal(undefined);
    await send('done');
    const first = rig.s.inventory.requireNode('compute-0-0').install!.image!;
    expect(first).to.include({ ref: 'gold@1', sha256: sha1 });
    expect(events(rig.s, 'compute-0-0', 'image')).to.deep.equal([`installed image gold@1 (sha256 ${sha1})`]);

    rig.s.renderer.appendText = directive('gold@2', sha2);
    expect((await rig.s.request({ path: KICKSTART_PATH, from: '127.0.3.1' })).status).to.equal(200);
    await send('profile');
    await send('failed');
    expect(rig.s.inventory.requireNode('compute-0-0').install).to.deep.include({ state: 'failed', image: first });
    await send('profile');
    await send('done');
    expect(rig.s.inventory.requireNode('compute-0-0').install!.image).to.include({ ref: 'gold@2', sha256: sha2 });
    await send('done');
    expect(events(rig.s, 'compute-0-0', 'image')).to.have.length(2);
    // A reinstall clears the progress; the history still says what the node runs.
    rig.s.inventory.setInstall('compute-0-0' as NodeName, null);
    expect(lastInstalledImage(rig.s.inventory, rig.s.inventory.requireNode('compute-0-0'))).to.include({ ref: 'gold@2', sha256: sha2 });
    // A kickstart without an image directive leaves nothing to record.
    rig.s.renderer.appendText = '';
    await rig.s.request({ path: KICKSTART_PATH, from: '127.0.3.2' });
    await send('done', '127.0.3.2');
    expect(rig.s.inventory.requireNode('compute-0-1').install!.image).to.equal(undefined);
  });

  it('404 for an unknown requester, 400 for a bad body; nothing stored', async () => {
    const unknown = await rig.s.request({ method: 'POST', path: REPORT_PATH, body: { state: 'done' }, from: '127.0.3.9' });
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.contain('IP 127.0.3.9');
    for (const body of ['{not json', JSON.stringify({ state: 'rebooting' }), JSON.stringify({ state: 'writing', bytesDone: -1 }), '[]']) {
      const r = await rig.s.request({ method: 'POST', path: REPORT_PATH, body, headers: { 'content-type': 'application/json' }, from: '127.0.3.1' });
      expect(r.status, body).to.equal(400);
    }
    expect(rig.s.inventory.requireNode('compute-0-0').install).to.equal(null);
  });
});

describe('http: capture.cgi', () => {
  let rig: Rig;
  let image: Buffer;
  let token = '';
  const put = (body: Buffer, opts: { name?: string; from?: string; token?: string } = {}) =>
    rig.s.request({ method: 'PUT', path: `${CAPTURE_PATH}?image=${opts.name ?? 'golden'}`, body, from: opts.from ?? '127.0.4.1', session: opts.token ?? token });
  const storeFiles = () => (fs.existsSync(rig.images.dir) ? fs.readdirSync(rig.images.dir).sort() : []);

  before(async () => {
    image = await makeImage(randomDisk());
  });
  beforeEach(async () => {
    rig = await startRig(8 * 1024 * KiB);
    rig.s.addNode('compute-0-0', '52:54:00:00:02:01', '127.0.4.1', 'capture');
    rig.s.addNode('compute-0-1', '52:54:00:00:02:02', '127.0.4.2', 'os');
    token = rig.s.sessionOf('compute-0-0');
  });
  afterEach(() => rig.s.close());
  after(cleanupTmpDirs);

  it('stores a verified upload as an image, lists it, and flips the node to os', async () => {
    const r = await put(image);
    expect(r.status, r.text).to.equal(201);
    const meta = r.json();
    expect(meta).to.include({ name: 'golden', storedSize: image.length, uploadedBytes: image.length });
    expect(rig.images.list().map((m) => m.name)).to.deep.equal(['golden']);
    expect(fs.readFileSync(rig.images.path('golden')).equals(image)).to.equal(true);
    expect(storeFiles()).to.deep.equal(['golden.json', 'golden.ksimg', 'golden.torrent']);
    expect(rig.s.inventory.requireNode('compute-0-0').bootAction).to.equal('os');
    const ev = events(rig.s, 'compute-0-0', 'capture');
    expect(ev[0]).to.equal('capture upload of image golden started');
    expect(ev[1]).to.match(/^captured image golden: \d+ bytes raw/);
    expect(events(rig.s, 'compute-0-0', 'boot').at(-1)).to.equal('boot action capture -> os (capture complete)');
  });

  it("403 without the session token, with a made-up one, or with another node's from the wrong address", async () => {
    const none = await rig.s.request({ method: 'PUT', path: `${CAPTURE_PATH}?image=golden`, body: image, from: '127.0.4.1' });
    expect(none.status).to.equal(403);
    expect(none.text).to.contain('session token is required');
    expect((await put(image, { token: 'A'.repeat(43) })).status).to.equal(403);
    expect((await put(image, { token: 'short' })).status).to.equal(403);
    rig.s.inventory.setBootAction({ names: ['compute-0-1' as NodeName] }, 'capture');
    const other = rig.s.sessionOf('compute-0-1');
    const stolen = await put(image, { token: other });
    expect(stolen.status).to.equal(403);
    expect(stolen.text).to.not.contain('compute-0-1');
    expect(storeFiles()).to.deep.equal([]);
    expect(rig.s.inventory.requireNode('compute-0-0').bootAction).to.equal('capture');
  });

  it('the session token dies after one upload, even a failed one; a new capture action gives a new one', async () => {
    expect((await put(crypto.randomBytes(100 * KiB))).status).to.equal(422);
    const again = await put(image);
    expect(again.status).to.equal(403);
    expect(again.text).to.contain('already made its upload');
    rig.s.inventory.setBootAction({ names: ['compute-0-0' as NodeName] }, 'capture');
    const fresh = rig.s.sessionOf('compute-0-0');
    expect(fresh).to.not.equal(token);
    expect((await put(image, { token: fresh })).status).to.equal(201);
    expect(rig.s.sessionOf('compute-0-0')).to.equal('');
    expect((await put(image, { token: fresh, name: 'golden2' })).status).to.equal(403);
  });

  it('403 when the node is not in capture, 404 for an unknown requester, 400 for a bad name', async () => {
    rig.s.inventory.setBootAction({ names: ['compute-0-1' as NodeName] }, 'install');
    const r = await put(image, { from: '127.0.4.2', token: rig.s.sessionOf('compute-0-1') });
    expect(r.status).to.equal(403);
    expect(r.text).to.contain('not capture');
    expect((await put(image, { from: '127.0.4.9', token: '' })).status).to.equal(404);
    expect((await put(image, { name: '..%2Fetc' })).status).to.equal(400);
    expect((await put(image, { name: 'x.json' })).status).to.equal(400);
    expect(storeFiles()).to.deep.equal([]);
  });

  it('409 when the image name exists; the existing image is untouched', async () => {
    expect((await put(image)).status).to.equal(201);
    rig.s.inventory.setBootAction({ names: ['compute-0-0' as NodeName] }, 'capture');
    const other = await makeImage(crypto.randomBytes(100 * KiB));
    const r = await put(other, { token: rig.s.sessionOf('compute-0-0') });
    expect(r.status).to.equal(409);
    expect(fs.readFileSync(rig.images.path('golden')).equals(image)).to.equal(true);
    expect(storeFiles()).to.deep.equal(['golden.json', 'golden.ksimg', 'golden.torrent']);
  });

  it('a corrupt chunk, a truncated image or a non-image leaves nothing in the store', async () => {
    const corrupt = Buffer.from(image);
    corrupt[corrupt.length - 2000]! ^= 0xff;
    const renew = () => rig.s.inventory.setBootAction({ names: ['compute-0-0' as NodeName] }, 'capture');
    let r = await put(corrupt);
    expect(r.status).to.equal(422);
    renew();
    r = await put(image.subarray(0, image.length - 5000), { token: rig.s.sessionOf('compute-0-0') });
    expect(r.status).to.equal(422);
    renew();
    r = await put(crypto.randomBytes(100 * KiB), { token: rig.s.sessionOf('compute-0-0') });
    expect(r.status).to.equal(422);
    expect(r.text).to.contain('not a kickswarm chunked image');
    expect(storeFiles()).to.deep.equal([]);
    expect(rig.s.inventory.requireNode('compute-0-0').bootAction).to.equal('capture');
    expect(events(rig.s, 'compute-0-0', 'capture').filter((m) => /failed \(422\)/.test(m))).to.have.length(3);
  });

  it('413 beyond the size limit', async () => {
    const big = Buffer.concat([image, Buffer.alloc(9 * 1024 * KiB)]);
    const r = await put(big);
    expect(r.status).to.equal(413);
    expect(storeFiles()).to.deep.equal([]);
  });

  it('413 while streaming a chunked upload beyond the limit, answered before the connection closes', async () => {
    const answer = await new Promise<string>((resolve) => {
      const got: Buffer[] = [];
      const sock = net.connect({ host: '127.0.0.1', port: rig.s.port, localAddress: '127.0.4.1' }, () => {
        sock.write(`PUT ${CAPTURE_PATH}?image=golden HTTP/1.1\r\nHost: x\r\nX-Kickswarm-Session: ${token}\r\nTransfer-Encoding: chunked\r\n\r\n`);
        const piece = Buffer.concat([image, Buffer.alloc(1024 * KiB - image.length)]);
        let sent = 0;
        const pump = (): void => {
          while (sent < 12 && !sock.destroyed) {
            sent++;
            const ok = sock.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
            if (!ok) return void sock.once('drain', pump);
          }
        };
        pump();
      });
      sock.on('data', (c: Buffer) => got.push(c));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve(Buffer.concat(got).toString('latin1')));
    });
    expect(answer).to.match(/^HTTP\/1\.1 413/);
    expect(answer).to.contain('upload larger than');
    await until('no file left in the image store', () => storeFiles().length === 0);
  });

  it('a client that disconnects mid-upload leaves no image and no temp file', async () => {
    const half = image.subarray(0, Math.floor(image.length / 2));
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: rig.s.port, localAddress: '127.0.4.1' }, () => {
        sock.write(`PUT ${CAPTURE_PATH}?image=golden HTTP/1.1\r\nHost: x\r\nX-Kickswarm-Session: ${token}\r\nContent-Length: ${image.length}\r\n\r\n`);
        sock.write(half);
        // Cut once the server is writing the upload to its temporary file.
        until('the upload in a temporary file', () => storeFiles().some((f) => f.includes('.upload.tmp-') && fs.statSync(path.join(rig.images.dir, f), { throwIfNoEntry: false })?.size)).then(
          () => (sock.destroy(), resolve()),
          reject,
        );
      });
      sock.on('error', reject);
    });
    await until('a failed capture event', () => events(rig.s, 'compute-0-0', 'capture').some((m) => m.includes('failed')));
    await until('no file left in the image store', () => storeFiles().length === 0);
    expect(events(rig.s, 'compute-0-0', 'capture').at(-1)).to.match(/^capture of image golden failed \(400\): upload broken off after \d+ bytes/);
    expect(rig.images.list()).to.deep.equal([]);
    expect(rig.s.inventory.requireNode('compute-0-0').bootAction).to.equal('capture');
  });
});

describe('http: secrets.cgi and report.cgi with sessions on', () => {
  let rig: Rig;
  beforeEach(async () => {
    rig = await startRig(undefined, undefined, true);
    rig.s.addNode('compute-0-0', '52:54:00:00:03:01', '127.0.5.1', 'install');
    rig.s.addNode('compute-0-1', '52:54:00:00:03:02', '127.0.5.2', 'install');
  });
  afterEach(() => rig.s.close());

  it("hands the profile secrets to the node's own token once; never without it, from elsewhere or twice", async () => {
    const token = rig.s.sessionOf('compute-0-0');
    const get = (from: string, session?: string) => rig.s.request({ path: SECRETS_PATH, from, ...(session !== undefined ? { session } : {}) });
    expect((await get('127.0.5.1')).status).to.equal(403);
    expect((await get('127.0.5.2', token)).status).to.equal(403);
    const r = await get('127.0.5.1', token);
    expect(r.status, r.text).to.equal(200);
    expect(r.headers['cache-control']).to.equal('no-store');
    expect(r.json()).to.deep.equal({ node: 'compute-0-0', files: [{ path: '/etc/ssh/ssh_host_ed25519_key', mode: '0600', content: 'key of compute-0-0\n' }] });
    const again = await get('127.0.5.1', token);
    expect(again.status).to.equal(403);
    expect(again.text).to.contain('handed out already');
    expect(events(rig.s, 'compute-0-0', 'secrets').filter((m) => m.startsWith('handed out'))).to.deep.equal(['handed out 1 secret file(s) to 127.0.5.1']);
  });

  it("report.cgi: the node's own token is needed; a token replayed after the flip to os is refused", async () => {
    const token = rig.s.sessionOf('compute-0-0');
    const send = (session?: string, from = '127.0.5.1') => rig.s.request({ method: 'POST', path: REPORT_PATH, body: { state: 'writing' }, from, ...(session ? { session } : {}) });
    expect((await send()).status).to.equal(403);
    expect((await send(token, '127.0.5.2')).status).to.equal(403);
    expect((await send(token)).status).to.equal(200);
    rig.s.inventory.setBootAction({ names: ['compute-0-0' as NodeName] }, 'os');
    const replay = await send(token);
    expect(replay.status).to.equal(403);
    expect(replay.text).to.contain('unknown or ended session token');
    expect(rig.s.inventory.requireNode('compute-0-1').install).to.equal(null);
  });

  it("image downloads: the node's own token for its profile's image only; none after the flip", async () => {
    const raw = path.join(tmpDir(), 'disk.raw');
    fs.writeFileSync(raw, randomDisk());
    await rig.images.add(raw, 'centos');
    rig.s.inventory.updateAttrs('compute-0-0' as NodeName, { 'image.name': 'centos' });
    const token = rig.s.sessionOf('compute-0-0');
    const get = (p: string, from: string, session?: string) => rig.s.request({ path: p, from, ...(session ? { session } : {}) });
    expect((await get('/install/images/centos', '127.0.5.1')).status, 'no token').to.equal(403);
    expect((await get('/install/images/centos', '127.0.9.9', token)).status, 'another address').to.equal(403);
    expect((await get('/install/images/centos', '127.0.5.2', rig.s.sessionOf('compute-0-1'))).status, 'not its image').to.equal(403);
    const ok = await get('/install/images/centos', '127.0.5.1', token);
    expect(ok.status).to.equal(200);
    expect((await get('/install/images/centos.torrent', '127.0.5.1', token)).status).to.equal(200);
    rig.s.inventory.setBootAction({ names: ['compute-0-0' as NodeName] }, 'os');
    expect((await get('/install/images/centos', '127.0.5.1', token)).status, 'after the flip').to.equal(403);
  });
});
