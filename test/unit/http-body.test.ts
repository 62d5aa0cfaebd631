import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { applyImage, writeImage } from '../../protocol/image-format.js';
import { openImageBody, parseResponseHead, type ImageBody } from '../../node-installer/fetch/http-body.js';
import { rejection } from '../helpers/rejection.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { sha256 } from '../helpers/hash.js';
import { until } from '../helpers/until.js';

const READ_BYTES = 256 * 1024;

interface Served {
  base: string;
  requests: http.IncomingMessage[];
  close: () => Promise<void>;
}

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** An HTTP server answering every request with `handler`. */
async function serve(handler: http.RequestListener): Promise<Served> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  const base = await listen(server);
  return {
    base,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP server that writes `bytes` to every connection once it has the request head, then does `after`. */
async function rawServer(bytes: Buffer | string, after: 'end' | 'hold' = 'end'): Promise<Served> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      s.write(bytes);
      if (after === 'end') s.end();
    });
    s.on('error', () => undefined);
  });
  const base = await listen(server);
  return {
    base,
    requests: [],
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every byte of `body`, in reads of the given sizes in turn. */
async function readAll(body: ImageBody, sizes: number[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; ; i++) {
    const b = await body.readExact(sizes[i % sizes.length]!);
    if (b.length === 0) break;
    parts.push(Buffer.from(b));
  }
  return Buffer.concat(parts);
}

describe('installer: the image body over plain HTTP/1.1', () => {
  const servers: Served[] = [];
  const bodies: ImageBody[] = [];
  afterEach(async () => {
    while (bodies.length) await bodies.pop()!.close();
    while (servers.length) await servers.pop()!.close();
  });
  after(cleanupTmpDirs);

  async function open(s: Served, o: Partial<Parameters<typeof openImageBody>[0]> = {}): Promise<ImageBody | undefined> {
    servers.push(s);
    const body = await openImageBody({ base: s.base, name: 'img', ...o });
    if (body) bodies.push(body);
    return body;
  }

  it('hands every byte over in exact reads, from the node address, with the session header', async () => {
    const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
    let from: string | undefined;
    const s = await serve((req, res) => {
      from = req.socket.remoteAddress;
      res.writeHead(200, { 'content-length': data.length }).end(data);
    });
    const body = (await open(s, { localAddress: '127.0.0.5', headers: { 'X-Kickswarm-Session': 'tok' } }))!;
    expect(body.length).to.equal(data.length);
    const got = await readAll(body, [1, 100_000, 1 << 20, 7, 300_000]);
    expect(sha256(got)).to.equal(sha256(data));
    expect(body.received).to.equal(data.length);
    const req = s.requests[0]!;
    expect(req.url).to.equal('/install/images/img');
    expect(req.headers['x-kickswarm-session']).to.equal('tok');
    expect(from).to.equal('127.0.0.5');
  });

  it('reads into the buffer it is given', async () => {
    const data = crypto.randomBytes(1000);
    const body = (await open(await serve((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data))))!;
    const into = Buffer.alloc(2000);
    const got = await body.readExact(1000, into);
    expect(got.buffer).to.equal(into.buffer);
    expect(got.equals(data)).to.equal(true);
    expect((await body.readExact(1)).length).to.equal(0);
  });

  it('keeps the server at most one read buffer ahead of the reader', async () => {
    const data = crypto.randomBytes(32 * 1024 * 1024);
    let sent = 0;
    let res: http.ServerResponse | undefined;
    const s = await serve((_req, r) => {
      res = r;
      r.writeHead(200, { 'content-length': data.length });
      const step = 1024 * 1024;
      const pump = () => {
        while (sent < data.length) {
          const ok = r.write(data.subarray(sent, sent + step));
          sent += step;
          if (!ok) return void r.once('drain', pump);
        }
        r.end();
      };
      pump();
    });
    const body = (await open(s))!;
    const parts: Buffer[] = [];
    for (let i = 0; i < 4; i++) {
      parts.push(Buffer.from(await body.readExact(64 * 1024)));
      await until('the server to be held back', () => res?.writableNeedDrain && sent < data.length);
      // The reader has stopped asking. Another body of 4 MiB, read whole on the same event loop,
      // gives this socket as many chances to read on as that takes reads (it must take none).
      const control = crypto.randomBytes(4 * 1024 * 1024);
      const other = (await open(await serve((_req, r) => r.writeHead(200, { 'content-length': control.length }).end(control))))!;
      expect((await readAll(other, [65536])).length).to.equal(control.length);
      expect(body.received - 64 * 1024 * parts.length).to.be.at.most(READ_BYTES);
      expect(sent).to.be.below(data.length);
    }
    parts.push(await readAll(body, [1 << 20]));
    expect(sha256(Buffer.concat(parts))).to.equal(sha256(data));
  });

  it('applies a whole image, every chunk verified', async () => {
    const dir = tmpDir();
    const raw = crypto.randomBytes(40 * 65536);
    raw.fill(0, 0, 3 * 65536);
    raw.fill(97, 10 * 65536, 20 * 65536);
    fs.writeFileSync(path.join(dir, 'raw'), raw);
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'img.ksimg'), { chunkSize: 65536 });
    const file = fs.readFileSync(path.join(dir, 'img.ksimg'));
    const body = (await open(await serve((_req, res) => res.writeHead(200, { 'content-length': file.length }).end(file))))!;
    const sha = await applyImage(body, path.join(dir, 'target'));
    expect(sha).to.equal(sha256(raw));
    expect(sha256(fs.readFileSync(path.join(dir, 'target')))).to.equal(sha256(raw));
  });

  it('leaves chunked, encoded and https bodies to the general client', async () => {
    const chunked = await serve((_req, res) => {
      res.writeHead(200);
      res.write('abc');
      res.end('def');
    });
    expect(await open(chunked)).to.equal(undefined);
    const encoded = await serve((_req, res) => res.writeHead(200, { 'content-length': 3, 'content-encoding': 'gzip' }).end('abc'));
    expect(await open(encoded)).to.equal(undefined);
    expect(await openImageBody({ base: 'https://127.0.0.1:1', name: 'img' })).to.equal(undefined);
  });

  it('skips interim responses before the final one', async () => {
    const body = (await open(await rawServer('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')))!;
    expect((await body.readExact(10)).toString()).to.equal('hello');
  });

  it('says what went wrong for error statuses', async () => {
    const e404 = await rejection(open(await serve((_req, res) => res.writeHead(404).end('no such image'))));
    expect(e404).to.be.instanceOf(NotFoundError);
    const e503 = await rejection(open(await serve((_req, res) => res.writeHead(503).end('busy building'))));
    expect(e503).to.be.instanceOf(UnavailableError);
    expect(e503.message).to.include('HTTP 503').and.include('busy building');
  });

  it('refuses malformed and oversized response heads', async () => {
    const garbage = await rejection(open(await rawServer('SSH-2.0-OpenSSH\r\n\r\n')));
    expect(garbage).to.be.instanceOf(UnavailableError);
    expect(garbage.message).to.include('not an HTTP/1.x response');
    const folded = await rejection(open(await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n  folded\r\n\r\nabc')));
    expect(folded.message).to.include('malformed response header');
    const huge = await rejection(open(await rawServer(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(40_000)}`, 'hold')));
    expect(huge.message).to.include('response head is over');
    const two = await open(await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc'));
    expect(two).to.equal(undefined);
    expect(() => parseResponseHead('HTTP/1.1 2000 OK')).to.throw(UnavailableError);
  });

  it('fails a connection that closes before the response head', async () => {
    const e = await rejection(open(await rawServer('HTTP/1.1 200 OK\r\nContent-')));
    expect(e).to.be.instanceOf(UnavailableError);
    expect(e.message).to.include('closed before a whole response head');
  });

  it('fails a body that ends short, and one that stalls', async () => {
    const short = (await open(await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this')))!;
    const e = await rejection(short.readExact(100));
    expect(e).to.be.instanceOf(UnavailableError);
    expect(e.message).to.include('closed after 9 of 100 body bytes');
    const stalled = (await open(await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome', 'hold'), { timeoutMs: 300 }))!;
    expect((await stalled.readExact(4)).toString()).to.equal('some');
    const t = await rejection(stalled.readExact(10));
    expect(t).to.be.instanceOf(UnavailableError);
    expect(t.message).to.include('no data for');
  });

  it('does not time out while the reader is not asking', async () => {
    const data = crypto.randomBytes(2 * 1024 * 1024);
    const body = (await open(await serve((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data)), { timeoutMs: 200 }))!;
    const first = Buffer.from(await body.readExact(1000));
    // A body with the same timeout that is asking, from a server that sends nothing more, times out:
    // by then this one has gone as long without asking.
    const asking = (await open(await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', 'hold'), { timeoutMs: 200 }))!;
    expect((await rejection(asking.readExact(10))).message).to.include('no data for');
    const rest = await readAll(body, [65536]);
    expect(sha256(Buffer.concat([first, rest]))).to.equal(sha256(data));
  });

  it('refuses header values that would split the request', async () => {
    const s = await serve((_req, res) => res.end());
    const e = await rejection(open(s, { headers: { 'X-A': 'a\r\nX-B: b' } }));
    expect(e.message).to.include('control characters');
  });
});
