import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import Koa from 'koa';
import { errorMiddleware } from '../../server/http/errors.js';
import { bootFileRoutes } from '../../server/http/routes/boot.js';
import { silentLogger } from '../../server/log.js';
import { tmpDir } from '../helpers/tmp.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(base: string, p: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // The path goes out as written (a URL string would have its dot segments resolved by the client).
    const u = new URL(base);
    const req = http.request({ host: u.hostname, port: u.port, path: p, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('http: GET /install/boot/PATH (the TFTP root over HTTP)', () => {
  let dir: string;
  let server: http.Server;
  let base: string;
  const kernel = crypto.randomBytes(3 * 1024 * 1024 + 17);

  before(async () => {
    dir = tmpDir('ksboot-');
    const root = path.join(dir, 'tftpboot');
    fs.mkdirSync(path.join(root, 'kickswarm'), { recursive: true });
    fs.writeFileSync(path.join(root, 'kickswarm', 'vmlinuz'), kernel);
    fs.writeFileSync(path.join(root, 'empty'), '');
    fs.writeFileSync(path.join(dir, 'secret'), 'outside the root');
    fs.symlinkSync(path.join(dir, 'secret'), path.join(root, 'escape'));
    const app = new Koa();
    app.use(errorMiddleware(silentLogger()));
    const router = bootFileRoutes({ root, log: silentLogger() });
    app.use(router.routes()).use(router.allowedMethods());
    server = http.createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a file whole, with its length and Accept-Ranges', async () => {
    const a = await request(base, '/install/boot/kickswarm/vmlinuz');
    expect(a.status).to.equal(200);
    expect(a.headers['accept-ranges']).to.equal('bytes');
    expect(Number(a.headers['content-length'])).to.equal(kernel.length);
    expect(a.body.equals(kernel)).to.equal(true);
  });

  it('answers HEAD with the length and no body, and serves an empty file', async () => {
    const h = await request(base, '/install/boot/kickswarm/vmlinuz', { method: 'HEAD' });
    expect(h.status).to.equal(200);
    expect(Number(h.headers['content-length'])).to.equal(kernel.length);
    expect(h.body.length).to.equal(0);
    const e = await request(base, '/install/boot/empty');
    expect(e.status).to.equal(200);
    expect(e.body.length).to.equal(0);
  });

  it('serves ranges (206), and 416 with the size for one past the end', async () => {
    const r = await request(base, '/install/boot/kickswarm/vmlinuz', { headers: { Range: 'bytes=100-199' } });
    expect(r.status).to.equal(206);
    expect(r.headers['content-range']).to.equal(`bytes 100-199/${kernel.length}`);
    expect(r.body.equals(kernel.subarray(100, 200))).to.equal(true);
    const tail = await request(base, '/install/boot/kickswarm/vmlinuz', { headers: { Range: 'bytes=-10' } });
    expect(tail.body.equals(kernel.subarray(kernel.length - 10))).to.equal(true);
    const bad = await request(base, '/install/boot/kickswarm/vmlinuz', { headers: { Range: `bytes=${kernel.length}-` } });
    expect(bad.status).to.equal(416);
    expect(bad.headers['content-range']).to.equal(`bytes */${kernel.length}`);
  });

  it('refuses names that leave the root, symlinks out of it, and folders; 404 for absent files', async () => {
    expect((await request(base, '/install/boot/..%2fsecret')).status).to.equal(400);
    expect((await request(base, '/install/boot/kickswarm/%2e%2e/%2e%2e/secret')).status).to.equal(400);
    expect((await request(base, '/install/boot/a%00b')).status).to.equal(400);
    expect((await request(base, '/install/boot/%zz')).status).to.equal(400);
    const esc = await request(base, '/install/boot/escape');
    expect(esc.status).to.equal(403);
    expect(esc.body.toString()).to.not.contain('outside the root');
    expect((await request(base, '/install/boot/kickswarm')).status).to.equal(404);
    expect((await request(base, '/install/boot/nothing-here')).status).to.equal(404);
  });
});
