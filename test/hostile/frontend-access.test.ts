/**
 * The frontend as `kickswarm serve` runs it: image downloads and /metrics are
 * for registered nodes and the admin token only unless configured public, and
 * the data dir does not let other local users read the inventory or config.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { KICKSTART_PATH } from '../../protocol/api.js';
import { parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { Frontend } from '../../server/frontend.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

function get(url: string, opts: { from?: string; token?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
    const req = http.get(url, { headers, localAddress: opts.from ?? '127.0.0.1', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('latin1') }));
    });
    req.on('error', reject);
  });
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('hostile: frontend access', function () {
  this.timeout(180_000);
  let dir: string;
  let fe: Frontend | undefined;

  beforeEach(() => {
    dir = tmpDir('kickswarm-access-');
  });
  afterEach(async () => {
    await fe?.close();
    fe = undefined;
    cleanupTmpDirs();
  });

  async function start(overrides: Record<string, unknown> = {}): Promise<{ url: string; token: string }> {
    const data = path.join(dir, 'data');
    fe = new Frontend({ dataDir: data, overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0, ...overrides }, log: pino({ level: 'silent' }) });
    const raw = path.join(dir, 'disk.raw');
    fs.writeFileSync(raw, Buffer.alloc(2 * 1024 * 1024, 7));
    await fe.images.add(raw, 'base');
    const url = (await fe.start()).frontendUrl;
    fe.inventory.addNode({ name: parseNodeName('node-0-0'), mac: parseMac('52:54:00:ff:00:01'), ip: parseIpv4('127.0.1.1'), appliance: 'compute', bootAction: 'install' });
    return { url, token: fs.readFileSync(path.join(data, 'api-token'), 'utf8').trim() };
  }

  it('images and torrents: 403 for unregistered hosts, 401 for a wrong token; nodes and the admin token get them', async () => {
    // Install sessions off: registered nodes are known by their address alone (sessions have their own tests).
    const { url, token } = await start({ sessions: { enabled: false } });
    for (const p of ['/install/images/base', '/install/images/base.torrent', '/INSTALL/images/base', '/install/images/nosuch']) {
      const r = await get(url + p, { from: '127.0.66.6' });
      expect(r.status, p).to.equal(403);
      expect(r.text, p).to.equal('image downloads (images.public is off) need a registered node or the admin token\n');
    }
    expect((await get(`${url}/install/images/base`, { from: '127.0.66.6', token: 'wrong' })).status).to.equal(401);
    expect((await get(`${url}/install/images/base`, { from: '127.0.1.1' })).status).to.equal(200);
    expect((await get(`${url}/install/images/base.torrent`, { from: '127.0.1.1' })).status).to.equal(200);
    expect((await get(`${url}/install/images/base`, { from: '127.0.66.6', token })).status).to.equal(200);
    // A node awaiting approval is not a registered node yet.
    fe!.inventory.addNode({ name: parseNodeName('new-0-0'), mac: parseMac('52:54:00:ff:00:02'), ip: parseIpv4('127.0.1.2'), appliance: 'compute', pending: true });
    expect((await get(`${url}/install/images/base`, { from: '127.0.1.2' })).status).to.equal(403);
    const ks = await get(`${url}${KICKSTART_PATH}`, { from: '127.0.1.1' });
    expect(ks.status).to.equal(200);
  });

  it('/metrics: 401 without the admin token, 200 with it', async () => {
    const { url, token } = await start();
    const none = await get(`${url}/metrics`, { from: '127.0.66.6' });
    expect(none.status).to.equal(401);
    expect(none.text).to.equal('a bearer token is required (Authorization: Bearer <token>)\n');
    expect((await get(`${url}/METRICS`, { from: '127.0.66.6' })).status).to.equal(401);
    expect((await get(`${url}/metrics`, { from: '127.0.1.1' })).status).to.equal(401);
    const ok = await get(`${url}/metrics`, { token });
    expect(ok.status).to.equal(200);
    expect(ok.text).to.contain('kickswarm_kickstarts_total');
    expect((await get(`${url}/api/v1/swarm`, { from: '127.0.66.6' })).status).to.equal(401);
  });

  it('images.public and metrics.public open them to anyone', async () => {
    const { url } = await start({ images: { public: true }, metrics: { public: true } });
    expect((await get(`${url}/install/images/base.torrent`, { from: '127.0.66.6' })).status).to.equal(200);
    expect((await get(`${url}/metrics`, { from: '127.0.66.6' })).status).to.equal(200);
  });

  it('the data dir is 0700 and the inventory (with -wal, -shm), config and tokens 0600, also when made looser before', async () => {
    const data = path.join(dir, 'data');
    fs.mkdirSync(data, { mode: 0o755 });
    fs.chmodSync(data, 0o755);
    fs.writeFileSync(path.join(data, 'kickswarm.yaml'), 'logLevel: info\n', { mode: 0o644 });
    fs.chmodSync(path.join(data, 'kickswarm.yaml'), 0o644);
    await start();
    expect(mode(data)).to.equal(0o700);
    for (const f of ['inventory.sqlite', 'inventory.sqlite-wal', 'inventory.sqlite-shm', 'kickswarm.yaml', 'api-token']) {
      expect(mode(path.join(data, f)), f).to.equal(0o600);
    }
  });
});
