import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ConflictError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { readImage } from '../../protocol/image-format.js';
import { formatImageList, imageListing } from '../../server/cli/image.js';
import { ImageStore } from '../../server/images/store.js';
import { loadParseTorrent } from '../../server/images/torrent.js';
import { sha256 } from '../helpers/hash.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { rejection } from '../helpers/rejection.js';

const MiB = 1024 * 1024;

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error): Promise<Error> {
  const err = await rejection(p);
  expect(err).to.be.instanceOf(cls);
  return err;
}

describe('image store', () => {
  let dir: string;
  let store: ImageStore;
  let raw: Buffer;
  let rawPath: string;
  beforeEach(() => {
    dir = tmpDir('ksstore-');
    store = new ImageStore(path.join(dir, 'images'), { frontendUrl: 'http://10.1.1.1:8080', now: () => new Date('2030-01-02T03:04:05.000Z') });
    raw = Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(3 * MiB), Buffer.from('kickswarm '.repeat(100000))]);
    rawPath = path.join(dir, 'disk.raw');
    fs.writeFileSync(rawPath, raw);
  });
  afterEach(cleanupTmpDirs);

  const imagesDir = () => fs.readdirSync(path.join(dir, 'images')).sort();

  it('adds a raw image: .ksimg, .torrent and metadata, listed and readable', async () => {
    const seen: string[] = [];
    const meta = await store.add(rawPath, 'centos7', { onProgress: (p) => seen.push(p.phase) });
    expect(meta).to.include({ name: 'centos7', rawSize: raw.length, chunkSize: MiB, chunkCount: 5, storedChunks: 2, sha256: sha256(raw) });
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
    await rejects(store.add(rawPath, 'dup', { newOnly: true }), ConflictError);
    for (const bad of ['../etc', 'a/b', '.hidden', 'x.torrent', 'x.json', '', 'x@2', 'x@']) {
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
    const err = (await rejects(
      Promise.resolve().then(() => store.remove('centos7', { inUse: () => ['node c0-1', 'profile compute'] })),
      ConflictError,
    )) as Error;
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
    const text = formatImageList(imageListing(store.listAll()), false);
    expect(text.split('\n')[0]).to.match(/^NAME\s+VERSION\s+CURRENT\s+RAW\s+STORED\s+CHUNKS/);
    expect(text).to.match(/centos7\s+1\s+\*\s+5\.0 MiB/);
    expect(JSON.parse(formatImageList(imageListing(store.listAll()), true))[0].rawSize).to.equal(raw.length);
  });

  describe('versions', () => {
    const other = () => {
      const b = Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(MiB)]);
      const p = path.join(dir, `other-${crypto.randomBytes(3).toString('hex')}.raw`);
      fs.writeFileSync(p, b);
      return { p, b };
    };

    it('adds the next version on an existing name and makes it current; NAME@N stays exact', async () => {
      const v1 = await store.add(rawPath, 'compute');
      const o = other();
      const v2 = await store.add(o.p, 'compute');
      expect(v1).to.include({ version: 1, ref: 'compute@1' });
      expect(v2).to.include({ name: 'compute', version: 2, ref: 'compute@2', sha256: sha256(o.b) });
      expect(store.get('compute')).to.deep.equal(v2);
      expect(store.get('compute@1')).to.deep.equal(v1);
      expect(store.path('compute')).to.equal(store.path('compute@2'));
      expect(store.lookup('compute')).to.deep.equal({ name: 'compute@2', version: 2, sha256: v2.sha256, rawSize: v2.rawSize });
      expect(store.lookup('compute@3')).to.equal(undefined);
      expect(store.list()).to.deep.equal([v2]);
      expect(store.allVersions().map((m) => m.ref)).to.deep.equal(['compute@1', 'compute@2']);
      expect(imagesDir()).to.deep.equal(['compute.json', 'compute.ksimg', 'compute.torrent', 'compute@2.json', 'compute@2.ksimg', 'compute@2.torrent']);
      expect(() => store.get('compute@3')).to.throw(NotFoundError, /no version 3 \(versions: 1, 2\)/);
      const t = await (await loadParseTorrent())(await store.servedTorrent('compute', 'http://10.9.9.9:8080'));
      expect(t.infoHash).to.equal(v2.infoHash);
      expect(t.urlList).to.deep.equal(['http://10.9.9.9:8080/install/images/compute@2']);
    });

    it('rolls back to the previous version and forward again with --to; a new version becomes current', async () => {
      await store.add(rawPath, 'compute');
      await store.add(other().p, 'compute');
      await store.add(other().p, 'compute');
      const r = store.rollback('compute');
      expect([r.from.version, r.to.version]).to.deep.equal([3, 2]);
      expect(store.get('compute').version).to.equal(2);
      expect(store.rollback('compute').to.version).to.equal(1);
      expect(() => store.rollback('compute')).to.throw(ConflictError, /no version older than its current compute@1/);
      expect(store.rollback('compute', 3).to.version).to.equal(3);
      expect(() => store.rollback('compute', 7)).to.throw(NotFoundError);
      store.rollback('compute', 1);
      const v4 = await store.add(other().p, 'compute');
      expect(store.get('compute')).to.deep.equal(v4);
      expect(() => store.rollback('nope')).to.throw(NotFoundError);
    });

    it('prunes all but the current and the newest N, refusing (removing nothing) while a version is used', async () => {
      await store.add(rawPath, 'compute');
      for (let i = 0; i < 3; i++) await store.add(other().p, 'compute');
      store.rollback('compute', 1);
      const pins = new Set(['compute@2']);
      const usersOf = (r: { ref: string }) => (pins.has(r.ref) ? ['node c0-1'] : []);
      const err = (() => {
        try {
          store.prune('compute', 1, { usersOf });
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err).to.be.instanceOf(ConflictError);
      expect(err!.message).to.match(/nothing pruned: compute@2 \(used by node c0-1\)/);
      expect(store.allVersions()).to.have.length(4);
      pins.clear();
      expect(store.prune('compute', 1, { usersOf }).map((m) => m.ref)).to.deep.equal(['compute@2', 'compute@3']);
      expect(store.versions('compute')).to.deep.include({ current: 1 });
      expect(store.allVersions().map((m) => m.ref)).to.deep.equal(['compute@1', 'compute@4']);
      expect(() => store.prune('compute', 0)).to.throw(InvalidInputError);
      expect(store.prune('compute', 1)).to.deep.equal([]);
    });

    it('removes one version unless it is current or used; removing NAME removes every version', async () => {
      await store.add(rawPath, 'compute');
      await store.add(other().p, 'compute');
      expect(() => store.remove('compute@2')).to.throw(ConflictError, /current version/);
      expect(() => store.remove('compute@1', { inUse: (r) => (r.ref === 'compute@1' ? ['profile old'] : []) })).to.throw(ConflictError, /profile old/);
      store.remove('compute@1', { inUse: () => [] });
      expect(store.allVersions().map((m) => m.ref)).to.deep.equal(['compute@2']);
      await store.add(other().p, 'compute');
      let asked: unknown;
      store.remove('compute', {
        inUse: (r) => {
          asked = r;
          return [];
        },
      });
      expect(asked).to.deep.equal({ name: 'compute', ref: 'compute' });
      expect(imagesDir()).to.deep.equal([]);
    });

    it('reads a store written before versions existed as version 1 of each image', async () => {
      const m = await store.add(rawPath, 'legacy');
      const jsonPath = path.join(dir, 'images', 'legacy.json');
      const old = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      delete old.version;
      delete old.ref;
      fs.writeFileSync(jsonPath, JSON.stringify(old));
      expect(store.get('legacy')).to.deep.equal(m);
      expect(store.get('legacy@1')).to.deep.equal(m);
      const v2 = await store.add(other().p, 'legacy');
      expect(store.get('legacy').version).to.equal(2);
      expect(store.versions('legacy').versions.map((v) => v.ref)).to.deep.equal(['legacy@1', v2.ref]);
    });
  });
});
