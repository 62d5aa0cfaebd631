import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConflictError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { readImage } from '../../protocol/image-format.js';
import { formatImageList } from '../../server/cli/image.js';
import { ImageStore } from '../../server/images/store.js';
import { loadParseTorrent } from '../../server/images/torrent.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(cls);
    return err as Error;
  }
  expect.fail(`expected ${cls.name}`);
}

describe('image store', () => {
  let dir: string;
  let store: ImageStore;
  let raw: Buffer;
  let rawPath: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ksstore-'));
    store = new ImageStore(path.join(dir, 'images'), { frontendUrl: 'http://10.1.1.1:8080', now: () => new Date('2030-01-02T03:04:05.000Z') });
    raw = Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(3 * MiB), Buffer.from('kickswarm '.repeat(100000))]);
    rawPath = path.join(dir, 'disk.raw');
    fs.writeFileSync(rawPath, raw);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const imagesDir = () => fs.readdirSync(path.join(dir, 'images')).sort();

  it('adds a raw image: .ksimg, .torrent and metadata, listed and readable', async () => {
    const seen: string[] = [];
    const meta = await store.add(rawPath, 'centos7', { onProgress: (p) => seen.push(p.phase) });
    expect(meta).to.include({ name: 'centos7', rawSize: raw.length, chunkSize: MiB, chunkCount: 5, storedChunks: 2, sha256: sha(raw) });
    expect(meta.createdAt).to.equal('2030-01-02T03:04:05.000Z');
    expect(meta.storedSize).to.equal(fs.statSync(store.path('centos7')).size);
    expect(seen).to.include.members(['convert', 'torrent']);
    expect(imagesDir()).to.deep.equal(['centos7.json', 'centos7.ksimg', 'centos7.torrent']);
    expect(store.list()).to.deep.equal([meta]);
    expect(store.get('centos7')).to.deep.equal(meta);
    const t = await (await loadParseTorrent())(store.torrent('centos7'));
    expect(t.infoHash).to.equal(meta.infoHash);
    expect(t.name).to.equal('centos7.ksimg');
    expect(t.urlList).to.deep.equal(['http://10.1.1.1:8080/install/images/centos7']);
    const back = Buffer.alloc(raw.length);
    for await (const c of readImage(store.path('centos7'))) c.data.copy(back, c.diskOffset);
    expect(back.equals(raw)).to.equal(true);
  });

  it('imports a file already in the format after verifying it, and refuses a corrupt one', async () => {
    const a = await store.add(rawPath, 'a');
    const copy = path.join(dir, 'a-copy.ksimg');
    fs.copyFileSync(store.path('a'), copy);
    const b = await store.add(copy, 'b');
    expect(b).to.include({ sha256: a.sha256, storedSize: a.storedSize, chunkCount: a.chunkCount });
    const bad = fs.readFileSync(copy);
    bad[bad.length - 1000]! ^= 0xff;
    fs.writeFileSync(copy, bad);
    const err = (await rejects(store.add(copy, 'c'), Error)) as Error & { code?: string };
    expect(err.code).to.equal('corrupt_image');
    expect(imagesDir()).to.deep.equal(['a.json', 'a.ksimg', 'a.torrent', 'b.json', 'b.ksimg', 'b.torrent']);
  });

  it('with move, renames a formatted file into the store (same inode, no copy); a corrupt one is refused and gone', async () => {
    const a = await store.add(rawPath, 'a');
    const upload = path.join(dir, 'images', 'b.upload.tmp');
    fs.copyFileSync(store.path('a'), upload);
    const inode = fs.statSync(upload).ino;
    const b = await store.add(upload, 'b', { move: true });
    expect(b).to.include({ sha256: a.sha256, storedSize: a.storedSize });
    expect(fs.existsSync(upload)).to.equal(false);
    expect(fs.statSync(store.path('b')).ino).to.equal(inode);
    const bad = fs.readFileSync(store.path('a'));
    bad[bad.length - 1000]! ^= 0xff;
    fs.writeFileSync(upload, bad);
    const err = (await rejects(store.add(upload, 'c', { move: true }), Error)) as Error & { code?: string };
    expect(err.code).to.equal('corrupt_image');
    expect(fs.existsSync(upload)).to.equal(false);
    expect(imagesDir()).to.deep.equal(['a.json', 'a.ksimg', 'a.torrent', 'b.json', 'b.ksimg', 'b.torrent']);
  });

  it('leaves no file behind when an add fails or is aborted midway', async () => {
    let calls = 0;
    await rejects(
      store.add(rawPath, 'boom', {
        onProgress: () => {
          if (++calls === 2) throw new Error('disk full (simulated)');
        },
      }),
      Error,
    );
    expect(imagesDir()).to.deep.equal([]);
    const ac = new AbortController();
    await rejects(store.add(rawPath, 'boom', { signal: ac.signal, onProgress: () => ac.abort() }), Error);
    expect(imagesDir()).to.deep.equal([]);
    expect(store.list()).to.deep.equal([]);
  });

  it('refuses duplicate, concurrent and malformed names', async () => {
    const first = store.add(rawPath, 'dup');
    const err = await rejects(store.add(rawPath, 'dup'), ConflictError);
    expect(err.message).to.match(/being added/);
    await first;
    await rejects(store.add(rawPath, 'dup'), ConflictError);
    for (const bad of ['../etc', 'a/b', '.hidden', 'x.torrent', 'x.json', '']) {
      await rejects(store.add(rawPath, bad), InvalidInputError);
    }
    await rejects(store.add(path.join(dir, 'missing.raw'), 'y'), NotFoundError);
  });

  it('treats a lock left by a dead process as stale', async () => {
    fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'images', 'x.lock'), '999999999\n');
    fs.writeFileSync(path.join(dir, 'images', 'x.ksimg.tmp-999999999-abcd'), 'half');
    await store.add(rawPath, 'x');
    expect(imagesDir()).to.deep.equal(['x.json', 'x.ksimg', 'x.torrent']);
  });

  it('removes an image unless someone uses it', async () => {
    await store.add(rawPath, 'centos7');
    const err = (await rejects(Promise.resolve().then(() => store.remove('centos7', { inUse: () => ['node c0-1', 'profile compute'] })), ConflictError)) as Error;
    expect(err.message).to.match(/c0-1.*compute/);
    expect(store.list()).to.have.length(1);
    store.remove('centos7', { inUse: () => [] });
    expect(imagesDir()).to.deep.equal([]);
    expect(() => store.remove('centos7')).to.throw(NotFoundError);
    expect(() => store.get('nope')).to.throw(NotFoundError);
    expect(() => store.torrent('nope')).to.throw(NotFoundError);
  });

  it('formats the list in human units, JSON in bytes', async () => {
    await store.add(rawPath, 'centos7');
    const text = formatImageList(store.list(), false);
    expect(text.split('\n')[0]).to.match(/^NAME\s+RAW\s+STORED\s+CHUNKS/);
    expect(text).to.match(/centos7\s+5\.0 MiB/);
    expect(JSON.parse(formatImageList(store.list(), true))[0].rawSize).to.equal(raw.length);
  });
});
