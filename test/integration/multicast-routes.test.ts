import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import Koa from 'koa';
import { parseAddressXml } from '../../node-installer/fetch/multicast-http.js';
import { errorMiddleware } from '../../server/http/errors.js';
import { ImageStore } from '../../server/images/store.js';
import { silentLogger } from '../../server/log.js';
import { frisbeeRoutes } from '../../server/multicast/routes.js';
import { MulticastSessions } from '../../server/multicast/sessions.js';
import { until } from '../helpers/until.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const log = silentLogger();

async function get(base: string, p: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(base + p);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

describe('http: /frisbee routes (OMF frisbee service)', function () {
  this.timeout(20_000);
  let dir: string;
  let store: ImageStore;
  let sessions: MulticastSessions;
  let server: http.Server;
  let base: string;
  const portBase = 20_000 + Math.floor(Math.random() * 30_000);
  const g = 1 + Math.floor(Math.random() * 200);

  before(async () => {
    dir = tmpDir('ksfrisbee-routes-');
    store = new ImageStore(path.join(dir, 'images'));
    for (const name of ['alpha', 'beta']) {
      fs.writeFileSync(path.join(dir, name), crypto.randomBytes(200_000));
      await store.add(path.join(dir, name), name, { chunkSize: 64 * 1024 });
    }
    sessions = new MulticastSessions({ store, log, groupPool: `239.254.${g}.1-239.254.${g}.9`, portPool: `${portBase}-${portBase + 9}`, rateBytesPerSec: 12_500_000 });
    await sessions.start();
    const app = new Koa();
    app.use(errorMiddleware(log));
    const r = frisbeeRoutes(sessions);
    app.use(r.routes()).use(r.allowedMethods());
    server = http.createServer(app.callback());
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await sessions.close();
    await sessions.close();
    await new Promise((r) => server.close(r));
    cleanupTmpDirs();
  });

  it('getAddress answers the documented XML and reuses the session for the same image', async () => {
    const a = await get(base, '/frisbee/getAddress?img=alpha');
    expect(a.status).to.equal(200);
    expect(a.type).to.match(/^application\/xml/);
    expect(a.text).to.match(/^<\?xml version='1.0'\?>\n<response status="OK">\n {2}<image>alpha<\/image>\n {2}<mcAddress>239\.254\.\d+\.\d+<\/mcAddress>\n {2}<mcPort>\d+<\/mcPort>\n/);
    const addr = parseAddressXml(a.text);
    const meta = store.get('alpha');
    expect(addr).to.include({ image: 'alpha', mcAddress: `239.254.${g}.1`, mcPort: portBase, chunkSize: 65536, chunkCount: meta.chunkCount, storedChunks: meta.storedChunks, blockSize: 1400, ttl: 1 });
    expect(addr.indexEnd).to.equal(128 + 56 * meta.storedChunks);
    expect(a.text).to.include('<bandwidth>100.0</bandwidth>');
    const again = parseAddressXml((await get(base, '/frisbee/getAddress?img=alpha')).text);
    expect(again).to.deep.equal(addr);
  });

  it('two images never share a group:port', async () => {
    const a = parseAddressXml((await get(base, '/frisbee/getAddress?img=alpha')).text);
    const b = parseAddressXml((await get(base, '/frisbee/getAddress?img=beta')).text);
    expect(`${a.mcAddress}:${a.mcPort}`).to.not.equal(`${b.mcAddress}:${b.mcPort}`);
    expect(a.mcAddress).to.not.equal(b.mcAddress);
    expect(a.mcPort).to.not.equal(b.mcPort);
    expect(a.sessionId).to.not.equal(b.sessionId);
  });

  it('status lists every session as XML, or JSON with format=json, optionally for one image', async () => {
    const x = await get(base, '/frisbee/status');
    expect(x.status).to.equal(200);
    expect(x.text).to.match(/<frisbee status="OK" sessions="2">/);
    expect(x.text).to.match(
      /<session image="alpha" mcAddress="239\.254\.\d+\.\d+" mcPort="\d+" bandwidth="100\.0" rateCap="12500000" rate="12500000" receivers="0" activeReceivers="0" bytesSent="0" /,
    );
    expect(x.text).to.match(/idleSecondsLeft="\d+"/);
    const j = await get(base, '/frisbee/status?format=json&img=beta');
    const body = JSON.parse(j.text) as { sessions: { image: string; mcPort: number; idleSecondsLeft: number; chunksResent: number }[] };
    expect(body.sessions.map((s) => s.image)).to.deep.equal(['beta']);
    expect(body.sessions[0]!.idleSecondsLeft).to.be.within(290, 300);
    expect(body.sessions[0]!.chunksResent).to.equal(0);
  });

  it('bad and unknown names answer 400 and 404 as XML errors', async () => {
    const missing = await get(base, '/frisbee/getAddress');
    expect(missing.status).to.equal(400);
    expect(missing.text).to.match(/<ERROR code="invalid_input">missing image/);
    expect((await get(base, '/frisbee/getAddress?img=..%2Fetc%2Fpasswd')).status).to.equal(400);
    expect((await get(base, '/frisbee/getAddress?img=alpha.json')).status).to.equal(400);
    const unknown = await get(base, '/frisbee/getAddress?img=nosuch');
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.match(/<ERROR code="not_found">no image named nosuch<\/ERROR>/);
    expect((await get(base, '/frisbee/status?format=yaml')).status).to.equal(400);
  });

  it('ends idle sessions and frees their pair', async () => {
    const s2 = new MulticastSessions({ store, log, groupPool: `239.253.${g}.1`, portPool: `${portBase + 20}`, idleTimeoutMs: 300, sweepIntervalMs: 50 });
    await s2.start();
    try {
      const a = await s2.getAddress('alpha');
      expect(s2.status()).to.have.length(1);
      let err: unknown;
      await s2.getAddress('beta').catch((e) => (err = e));
      expect((err as { code?: string }).code, 'pool of one pair is exhausted').to.equal('unavailable');
      await until('the idle session to end', () => s2.status().length === 0);
      const b = await s2.getAddress('beta');
      expect(`${b.mcAddress}:${b.mcPort}`).to.equal(`${a.mcAddress}:${a.mcPort}`);
      // A request that arrives while the only session is still closing waits for its pair.
      const ended = s2.end('beta', 'test');
      const c = await s2.getAddress('alpha');
      expect(await ended).to.equal(true);
      expect(`${c.mcAddress}:${c.mcPort}`).to.equal(`${a.mcAddress}:${a.mcPort}`);
    } finally {
      await s2.close();
    }
  });

  it('restarts the session of an image replaced under the same name, and 404s a removed one', async () => {
    const before = parseAddressXml((await get(base, '/frisbee/getAddress?img=beta')).text);
    store.remove('beta');
    expect((await get(base, '/frisbee/getAddress?img=beta')).status).to.equal(404);
    expect(
      sessions.status().filter((x) => x.image === 'beta'),
      'session of a removed image ends',
    ).to.have.length(0);
    fs.writeFileSync(path.join(dir, 'beta2'), crypto.randomBytes(150_000));
    await store.add(path.join(dir, 'beta2'), 'beta', { chunkSize: 64 * 1024 });
    const after = parseAddressXml((await get(base, '/frisbee/getAddress?img=beta')).text);
    expect(after.imageId).to.not.equal(before.imageId);
    expect(after.sessionId).to.not.equal(before.sessionId);
    expect(sessions.status().filter((x) => x.image === 'beta')).to.have.length(1);
  });
});
