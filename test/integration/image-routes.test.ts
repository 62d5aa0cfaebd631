import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import Koa from 'koa';
import { errorMiddleware } from '../../server/http/errors.js';
import { imageRoutes, parseRange } from '../../server/http/routes/images.js';
import { ImageStore } from '../../server/images/store.js';
import { loadParseTorrent } from '../../server/images/torrent.js';
import { silentLogger } from '../../server/log.js';
import { openImageBody } from '../../node-installer/fetch/http-body.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(base: string, p: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + p, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('http: image routes', () => {
  let dir: string;
  let store: ImageStore;
  let server: http.Server;
  let base: string;
  let file: Buffer;
  const sent = new Map<string, number>();

  before(async () => {
    dir = tmpDir('ksroutes-');
    store = new ImageStore(path.join(dir, 'images'));
    const raw = Buffer.concat([crypto.randomBytes(2 * MiB), Buffer.alloc(4 * MiB), crypto.randomBytes(MiB + 5)]);
    fs.writeFileSync(path.join(dir, 'raw'), raw);
    await store.add(path.join(dir, 'raw'), 'centos7');
    file = fs.readFileSync(store.path('centos7'));
    const app = new Koa();
    app.use(errorMiddleware(silentLogger()));
    const router = imageRoutes({
      store,
      torrentFor: (name) => store.servedTorrent(name, base),
      onBytesSent: (name, n) => sent.set(name, (sent.get(name) ?? 0) + n),
      log: silentLogger(),
    });
    app.use(router.routes()).use(router.allowedMethods());
    server = http.createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    cleanupTmpDirs();
  });

  it('serves the whole image with length, ETag and Accept-Ranges, counting bytes sent', async () => {
    sent.clear();
    const a = await request(base, '/install/images/centos7');
    expect(a.status).to.equal(200);
    expect(a.body.equals(file)).to.equal(true);
    expect(a.headers['content-length']).to.equal(String(file.length));
    expect(a.headers['accept-ranges']).to.equal('bytes');
    expect(a.headers['content-type']).to.equal('application/octet-stream');
    expect(a.headers.etag).to.match(/^"[0-9a-f]{32}-[0-9a-f]+"$/);
    // Bytes are counted under the exact version served.
    expect(sent.get('centos7@1')).to.equal(file.length);
  });

  it("is a plain body the installer's image body reader takes whole", async () => {
    const body = await openImageBody({ base, name: 'centos7' });
    expect(body, 'the reader fell back to the general client').to.not.equal(undefined);
    const parts: Buffer[] = [];
    for (let b = await body!.readExact(MiB); b.length > 0; b = await body!.readExact(MiB)) parts.push(b);
    expect(Buffer.concat(parts).equals(file)).to.equal(true);
  });

  it('answers a single Range with 206 and Content-Range', async () => {
    for (const [range, start, end] of [
      ['bytes=0-127', 0, 127],
      ['bytes=1000-', 1000, file.length - 1],
      ['bytes=-500', file.length - 500, file.length - 1],
      [`bytes=100-${file.length + 99}`, 100, file.length - 1],
    ] as const) {
      const a = await request(base, '/install/images/centos7', { headers: { Range: range } });
      expect(a.status, range).to.equal(206);
      expect(a.headers['content-range']).to.equal(`bytes ${start}-${end}/${file.length}`);
      expect(a.headers['content-length']).to.equal(String(end - start + 1));
      expect(a.body.equals(file.subarray(start, end + 1))).to.equal(true);
    }
  });

  it('coalesces several ranges into one 206; ignores a malformed Range or stale If-Range', async () => {
    const m = await request(base, '/install/images/centos7', { headers: { Range: 'bytes=10-19, 500-599' } });
    expect(m.status).to.equal(206);
    expect(m.headers['content-range']).to.equal(`bytes 10-599/${file.length}`);
    expect(m.body.equals(file.subarray(10, 600))).to.equal(true);
    const bad = await request(base, '/install/images/centos7', { method: 'HEAD', headers: { Range: 'pages=1-2' } });
    expect(bad.status).to.equal(200);
    const stale = await request(base, '/install/images/centos7', { method: 'HEAD', headers: { Range: 'bytes=0-9', 'If-Range': '"other"' } });
    expect(stale.status).to.equal(200);
    expect(stale.headers['content-length']).to.equal(String(file.length));
  });

  it('answers an unsatisfiable Range with 416', async () => {
    const a = await request(base, '/install/images/centos7', { headers: { Range: `bytes=${file.length}-` } });
    expect(a.status).to.equal(416);
    expect(a.headers['content-range']).to.equal(`bytes */${file.length}`);
  });

  it('answers HEAD with headers only', async () => {
    const a = await request(base, '/install/images/centos7', { method: 'HEAD', headers: { Range: 'bytes=0-99' } });
    expect(a.status).to.equal(206);
    expect(a.headers['content-length']).to.equal('100');
    expect(a.body.length).to.equal(0);
    const t = await request(base, '/install/images/centos7.torrent', { method: 'HEAD' });
    expect(t.status).to.equal(200);
    expect(t.headers['content-type']).to.equal('application/x-bittorrent');
  });

  it('answers If-None-Match with 304', async () => {
    const etag = (await request(base, '/install/images/centos7', { method: 'HEAD' })).headers.etag!;
    const a = await request(base, '/install/images/centos7', { headers: { 'If-None-Match': etag } });
    expect(a.status).to.equal(304);
    expect(a.body.length).to.equal(0);
    expect((await request(base, '/install/images/centos7', { method: 'HEAD', headers: { 'If-None-Match': '"x"' } })).status).to.equal(200);
  });

  it('serves the torrent addressed to this frontend', async () => {
    const a = await request(base, '/install/images/centos7.torrent');
    expect(a.status).to.equal(200);
    expect(a.headers['content-type']).to.equal('application/x-bittorrent');
    const t = await (await loadParseTorrent())(a.body);
    expect(t.infoHash).to.equal(store.get('centos7').infoHash);
    expect(t.announce).to.deep.equal([`${base}/announce`]);
    // The web seed names the exact version, so its bytes cannot change under the torrent.
    expect(t.urlList).to.deep.equal([`${base}/install/images/centos7@1`]);
  });

  it('answers 400 for bad names and 404 for unknown images', async () => {
    expect((await request(base, '/install/images/..%2Fetc%2Fpasswd')).status).to.equal(400);
    expect((await request(base, '/install/images/.hidden')).status).to.equal(400);
    expect((await request(base, '/install/images/a..b')).status).to.equal(400);
    expect((await request(base, '/install/images/nope')).status).to.equal(404);
    expect((await request(base, '/install/images/nope.torrent')).status).to.equal(404);
  });

  it('is a web seed webtorrent can download the whole image from', async function () {
    this.timeout(60000);
    const { default: WebTorrent } = await import('webtorrent' as string);
    const client = new WebTorrent({ dht: false, lsd: false, utPex: false, natUpnp: false, natPmp: false, tracker: false });
    client.on('error', () => {});
    const out = path.join(dir, 'dl');
    try {
      const torrent = (await request(base, '/install/images/centos7.torrent')).body;
      await new Promise<void>((resolve, reject) => {
        const t = client.add(torrent, { path: out });
        t.on('error', reject);
        t.on('done', () => resolve());
      });
      expect(fs.readFileSync(path.join(out, 'centos7.ksimg')).equals(file)).to.equal(true);
    } finally {
      await new Promise((r) => client.destroy(r));
    }
  });

  it('follows versions: NAME is the current version, NAME@N exactly N; torrents web-seed the exact version', async function () {
    this.timeout(120_000);
    const v1Torrent = (await request(base, '/install/images/centos7.torrent')).body;
    const raw2 = Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(2 * MiB)]);
    fs.writeFileSync(path.join(dir, 'raw2'), raw2);
    const v2 = await store.add(path.join(dir, 'raw2'), 'centos7');
    expect(v2).to.include({ name: 'centos7', version: 2, ref: 'centos7@2' });
    const file2 = fs.readFileSync(store.path('centos7@2'));
    const cur = await request(base, '/install/images/centos7');
    expect(cur.body.equals(file2)).to.equal(true);
    expect((await request(base, '/install/images/centos7@1')).body.equals(file)).to.equal(true);
    expect((await request(base, '/install/images/centos7%402')).body.equals(file2)).to.equal(true);
    const etag1 = (await request(base, '/install/images/centos7@1', { method: 'HEAD' })).headers.etag;
    expect(cur.headers.etag).to.not.equal(etag1);
    const parse = await loadParseTorrent();
    const t2 = await parse((await request(base, '/install/images/centos7.torrent')).body);
    expect(t2.infoHash).to.equal(v2.infoHash);
    expect(t2.urlList).to.deep.equal([`${base}/install/images/centos7@2`]);
    expect((await parse((await request(base, '/install/images/centos7@1.torrent')).body)).infoHash).to.equal(store.get('centos7@1').infoHash);
    expect((await request(base, '/install/images/centos7@9')).status).to.equal(404);
    expect((await request(base, '/install/images/centos7@9.torrent')).status).to.equal(404);
    for (const bad of ['centos7@0', 'centos7@x', 'centos7@01', '@2']) expect((await request(base, `/install/images/${bad}`)).status, bad).to.equal(400);

    // A node holding the version-1 torrent still gets version-1 bytes from the web seed after version 2 became current.
    const { default: WebTorrent } = await import('webtorrent' as string);
    const client = new WebTorrent({ dht: false, lsd: false, utPex: false, natUpnp: false, natPmp: false, tracker: false });
    client.on('error', () => {});
    const out = path.join(dir, 'dl-v1');
    try {
      await new Promise<void>((resolve, reject) => {
        const t = client.add(v1Torrent, { path: out });
        t.on('error', reject);
        t.on('done', () => resolve());
      });
      expect(fs.readFileSync(path.join(out, 'centos7.ksimg')).equals(file)).to.equal(true);
    } finally {
      await new Promise((r) => client.destroy(r));
    }
  });
});

describe('parseRange', () => {
  it('follows RFC 9110 byte ranges', () => {
    expect(parseRange(undefined, 100)).to.equal(undefined);
    expect(parseRange('bytes=0-0', 100)).to.deep.equal({ start: 0, end: 0 });
    expect(parseRange('bytes=-0', 100)).to.equal('unsatisfiable');
    expect(parseRange('bytes=-200', 100)).to.deep.equal({ start: 0, end: 99 });
    expect(parseRange('bytes=5-4', 100)).to.equal(undefined);
    expect(parseRange('bytes=100-', 100)).to.equal('unsatisfiable');
    expect(parseRange('bytes=200-300, 10-20', 100)).to.deep.equal({ start: 10, end: 20 });
    expect(parseRange('bytes=a-b', 100)).to.equal(undefined);
  });
});
