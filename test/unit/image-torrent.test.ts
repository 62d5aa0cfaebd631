import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { clearTorrentCache, loadParseTorrent, makeTorrent, pieceLengthFor, retargetTorrent, torrentUrls } from '../../server/images/torrent.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('image torrents', () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = tmpDir('kstor-');
    file = path.join(dir, 'centos.ksimg');
    fs.writeFileSync(file, crypto.randomBytes(3 * MiB + 123));
  });
  after(cleanupTmpDirs);
  beforeEach(() => clearTorrentCache());

  it('chooses the smallest power-of-two piece length from 256 KiB giving at most 2000 pieces, up to 16 MiB', () => {
    expect(pieceLengthFor(0)).to.equal(256 * KiB);
    expect(pieceLengthFor(2000 * 256 * KiB)).to.equal(256 * KiB);
    expect(pieceLengthFor(2000 * 256 * KiB + 1)).to.equal(512 * KiB);
    expect(pieceLengthFor(20 * 1024 * MiB)).to.equal(16 * MiB);
    expect(pieceLengthFor(100 * 1024 * MiB)).to.equal(16 * MiB);
    for (const size of [1, 600 * MiB, 3000 * MiB, 31 * 1024 * MiB]) {
      const p = pieceLengthFor(size);
      expect(p & (p - 1)).to.equal(0);
      expect(Math.ceil(size / p)).to.be.at.most(2000);
      if (p > 256 * KiB) expect(Math.ceil(size / (p / 2))).to.be.above(2000);
    }
  });

  it('derives announce and web seed URLs from the frontend URL', () => {
    expect(torrentUrls('http://10.1.1.1:8080/', 'centos')).to.deep.equal({
      announce: 'http://10.1.1.1:8080/announce',
      webSeed: 'http://10.1.1.1:8080/install/images/centos',
    });
  });

  it('makes a private torrent announcing only to the frontend, with the web seed and file name', async () => {
    const urls = torrentUrls('http://10.1.1.1:8080', 'centos');
    const { torrent, infoHash } = await makeTorrent(file, 'centos', urls);
    const t = await (await loadParseTorrent())(torrent);
    expect(t.private).to.equal(true);
    expect(t.announce).to.deep.equal(['http://10.1.1.1:8080/announce']);
    expect(t.urlList).to.deep.equal(['http://10.1.1.1:8080/install/images/centos']);
    expect(t.name).to.equal('centos.ksimg');
    expect(t.length).to.equal(fs.statSync(file).size);
    expect(t.pieceLength).to.equal(256 * KiB);
    expect(t.infoHash)
      .to.equal(infoHash)
      .and.to.match(/^[0-9a-f]{40}$/);
  });

  it('keeps the info-hash when the frontend URL changes, whether re-hashed or retargeted', async () => {
    const a = await makeTorrent(file, 'centos', torrentUrls('http://10.1.1.1:8080', 'centos'));
    const b = await makeTorrent(file, 'centos', torrentUrls('http://192.168.7.7:80', 'centos'));
    expect(b.infoHash).to.equal(a.infoHash);
    expect(b.torrent.equals(a.torrent)).to.equal(false);
    const c = await retargetTorrent(a.torrent, torrentUrls('http://172.16.0.1:8080', 'centos'));
    expect(c.infoHash).to.equal(a.infoHash);
    const t = await (await loadParseTorrent())(c.torrent);
    expect(t.infoHash).to.equal(a.infoHash);
    expect(t.announce).to.deep.equal(['http://172.16.0.1:8080/announce']);
    expect(t.urlList).to.deep.equal(['http://172.16.0.1:8080/install/images/centos']);
    expect(t.private).to.equal(true);
  });

  it('caches by name and URLs, and re-hashes a replaced file', async () => {
    const urls = torrentUrls('http://10.1.1.1:8080', 'centos');
    const a = await makeTorrent(file, 'centos', urls);
    expect(await makeTorrent(file, 'centos', urls)).to.equal(a);
    const other = path.join(dir, 'other.ksimg');
    fs.writeFileSync(other, crypto.randomBytes(MiB));
    fs.renameSync(other, file);
    const b = await makeTorrent(file, 'centos', urls);
    expect(b.infoHash).to.not.equal(a.infoHash);
  });

  it('gives different images different info-hashes even with the same bytes and other names', async () => {
    const a = await makeTorrent(file, 'centos', torrentUrls('http://h', 'centos'));
    const b = await makeTorrent(file, 'rocky', torrentUrls('http://h', 'rocky'));
    expect(a.infoHash).to.not.equal(b.infoHash);
  });
});
