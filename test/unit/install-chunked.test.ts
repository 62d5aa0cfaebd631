import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { CorruptImageError, NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { writeImage } from '../../protocol/image-format.js';
import { applyChunksOutOfOrder } from '../../node-installer/install/chunked.js';
import { rejection } from '../helpers/swarm.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { sha256 } from '../helpers/hash.js';

const CS = 64 * 1024;

/** A raw disk: random chunks with every fourth chunk all zeros, so some chunks are not stored. */
function rawDisk(chunks: number): Buffer {
  const raw = crypto.randomBytes(chunks * CS + 1000);
  for (let n = 0; n < chunks; n += 4) raw.fill(0, n * CS, (n + 1) * CS);
  return raw;
}

interface RangeServer {
  base: string;
  ranges: [number, number][];
  close: () => Promise<void>;
}

/** Serves `file` at /install/images/<name> with single byte ranges; `tamper` may change what is sent. */
async function serveImage(name: string, file: string, opts: { tamper?: (start: number, body: Buffer) => Buffer; ignoreRange?: boolean } = {}): Promise<RangeServer> {
  const data = fs.readFileSync(file);
  const ranges: [number, number][] = [];
  const server = http.createServer((req, res) => {
    if (req.url !== `/install/images/${name}`) return void res.writeHead(404).end('no such image');
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || opts.ignoreRange) return void res.writeHead(200, { 'content-length': data.length }).end(data);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.length - 1);
    ranges.push([start, end]);
    let body: Buffer = data.subarray(start, end + 1);
    if (opts.tamper) body = opts.tamper(start, Buffer.from(body));
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, ranges, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('installer: chunks out of order through byte ranges', () => {
  const servers: RangeServer[] = [];
  afterEach(async () => {
    while (servers.length) await servers.pop()!.close();
  });
  after(cleanupTmpDirs);

  async function setup(chunks = 40, opts: Parameters<typeof serveImage>[2] = {}) {
    const dir = tmpDir();
    const raw = rawDisk(chunks);
    fs.writeFileSync(path.join(dir, 'raw'), raw);
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'img.ksimg'), { chunkSize: CS });
    const srv = await serveImage('img', path.join(dir, 'img.ksimg'), opts);
    servers.push(srv);
    return { dir, raw, srv, target: path.join(dir, 'target') };
  }

  it('writes a byte-identical target, fetching chunks in a shuffled order, zero chunks left unwritten', async () => {
    const { raw, srv, target } = await setup();
    const done = new Set<number>();
    let last = 0;
    const sha = await applyChunksOutOfOrder({ base: srv.base, image: 'img', target, writeZeros: false, done, onProgress: (p) => (last = p.rawDone) });
    expect(fs.readFileSync(target).equals(raw)).to.equal(true);
    expect(sha).to.equal(sha256(raw));
    expect(last).to.equal(raw.length);
    const chunkStarts = srv.ranges.slice(2).map(([s]) => s);
    expect(chunkStarts).to.have.length(31, '41 chunks, 10 of them zeros');
    expect(new Set(chunkStarts).size).to.equal(31);
    expect(chunkStarts).to.not.deep.equal([...chunkStarts].sort((a, b) => a - b));
  });

  it('writes the zero chunks too with writeZeros, over a target full of old data', async () => {
    const { raw, srv, target } = await setup(12);
    fs.writeFileSync(target, Buffer.alloc(raw.length + 5000, 0xee));
    await applyChunksOutOfOrder({ base: srv.base, image: 'img', target, writeZeros: true, done: new Set() });
    expect(fs.readFileSync(target).subarray(0, raw.length).equals(raw)).to.equal(true);
  });

  it('resumes: chunks in `done` are not fetched again', async () => {
    const { raw, srv, target } = await setup(12);
    const done = new Set<number>();
    await applyChunksOutOfOrder({ base: srv.base, image: 'img', target, writeZeros: false, done });
    const before = srv.ranges.length;
    await applyChunksOutOfOrder({ base: srv.base, image: 'img', target, writeZeros: false, done });
    expect(srv.ranges.length - before).to.equal(2, 'only the header and index');
    expect(fs.readFileSync(target).equals(raw)).to.equal(true);
  });

  it('never writes a chunk that fails its SHA-256: CorruptImageError names it', async () => {
    const { srv, target } = await setup(12, {
      tamper: (start, body) => {
        if (start > 0) body.writeUInt8(body.readUInt8(5) ^ 0xff, 5); // every chunk; header and index are read from 0
        return body;
      },
    });
    fs.writeFileSync(target, Buffer.alloc(0));
    const err = await rejection(applyChunksOutOfOrder({ base: srv.base, image: 'img', target, writeZeros: false, done: new Set(), parallel: 1 }));
    expect(err).to.be.instanceOf(CorruptImageError);
    expect(fs.readFileSync(target).every((b) => b === 0)).to.equal(true);
  });

  it('an unknown image is NotFoundError; a server that ignores Range is UnavailableError', async () => {
    const { srv, target } = await setup(8);
    expect(await rejection(applyChunksOutOfOrder({ base: srv.base, image: 'other', target, writeZeros: false, done: new Set() }))).to.be.instanceOf(NotFoundError);
    const plain = await setup(8, { ignoreRange: true });
    const err = await rejection(applyChunksOutOfOrder({ base: plain.srv.base, image: 'img', target: plain.target, writeZeros: false, done: new Set() }));
    expect(err).to.be.instanceOf(UnavailableError);
    expect(err.message).to.match(/HTTP 200/);
  });
});
