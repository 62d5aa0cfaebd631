import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { CorruptImageError, InvalidInputError } from '../../protocol/errors.js';
import {
  applyImage,
  CODEC_DEFLATE,
  confirmApplied,
  CODEC_STORED,
  decodeChunk,
  encodeChunk,
  encodeHeader,
  HEADER_SIZE,
  INDEX_ENTRY_SIZE,
  parseHeader,
  parseHeaderAndIndex,
  readImage,
  verifyImage,
  writeImage,
  type ImageChunk,
} from '../../protocol/image-format.js';
import { sha256 } from '../helpers/hash.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const CS = 64 * 1024;
let dir: string;

function textish(n: number): Buffer {
  const words = ['node', 'swarm', 'kickstart', 'chunk', 'frisbee', 'rack', '\n', 'pxelinux'];
  const out = Buffer.alloc(n);
  let at = 0;
  while (at < n) at += out.write(words[crypto.randomInt(words.length)]! + ' ', at);
  return out;
}

/** A disk-like image: random, text, long zero runs, and a tail that is not a whole chunk. */
function mixed(): Buffer {
  return Buffer.concat([crypto.randomBytes(CS + 17), Buffer.alloc(5 * CS), textish(3 * CS), Buffer.alloc(CS), crypto.randomBytes(1234)]);
}

async function rebuild(image: string | Readable, rawSize: number): Promise<{ buf: Buffer; chunks: ImageChunk[] }> {
  const buf = Buffer.alloc(rawSize);
  const chunks: ImageChunk[] = [];
  for await (const c of readImage(image)) {
    c.data.copy(buf, c.diskOffset);
    chunks.push(c);
  }
  return { buf, chunks };
}

async function corruptCode(p: Promise<unknown>): Promise<CorruptImageError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CorruptImageError);
    return err as CorruptImageError;
  }
  expect.fail('expected CorruptImageError');
}

async function drain(src: string | Readable): Promise<void> {
  for await (const _ of readImage(src)) void _;
}

describe('image format', () => {
  beforeEach(() => {
    dir = tmpDir('ksimg-');
  });
  afterEach(cleanupTmpDirs);

  const cases: [string, () => Buffer][] = [
    ['random data', () => crypto.randomBytes(4 * CS)],
    ['long zero runs', () => Buffer.concat([Buffer.alloc(10 * CS), Buffer.from('x'), Buffer.alloc(7 * CS)])],
    ['incompressible data, size not a multiple of the chunk size', () => crypto.randomBytes(3 * CS + 999)],
    ['mixed content', mixed],
    ['an empty image', () => Buffer.alloc(0)],
    ['a single byte', () => Buffer.from([0x5a])],
    ['a single zero byte', () => Buffer.from([0])],
  ];
  for (const [what, make] of cases) {
    it(`round-trips ${what} from a file and from a stream`, async () => {
      const raw = make();
      fs.writeFileSync(path.join(dir, 'raw'), raw);
      const fromFile = await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
      const fromStream = await writeImage(Readable.from([raw]), path.join(dir, 'b.ksimg'), { chunkSize: CS });
      for (const [s, f] of [
        [fromFile, 'a.ksimg'],
        [fromStream, 'b.ksimg'],
      ] as const) {
        expect(s.sha256).to.equal(sha256(raw));
        expect(s.rawSize).to.equal(raw.length);
        expect(s.chunkCount).to.equal(Math.ceil(raw.length / CS));
        expect(s.storedSize).to.equal(fs.statSync(path.join(dir, f)).size);
        expect((await rebuild(path.join(dir, f), raw.length)).buf.equals(raw)).to.equal(true);
        expect((await rebuild(fs.createReadStream(path.join(dir, f)), raw.length)).buf.equals(raw)).to.equal(true);
        expect((await verifyImage(path.join(dir, f))).sha256).to.equal(sha256(raw));
      }
    });
  }

  it('reads a stream whose buffers split header, index and chunks anywhere', async () => {
    const raw = mixed();
    fs.writeFileSync(path.join(dir, 'raw'), raw);
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
    const image = fs.readFileSync(path.join(dir, 'a.ksimg'));
    for (const sizes of [[1], [7, 4093, 1], [65_536, 3, 300_000], [image.length]]) {
      const parts: Buffer[] = [];
      for (let at = 0, k = 0; at < image.length; k++) {
        const n = Math.min(sizes[k % sizes.length]!, image.length - at);
        parts.push(Buffer.from(image.subarray(at, at + n)));
        at += n;
      }
      const { buf, chunks } = await rebuild(Readable.from(parts), raw.length);
      expect(buf.equals(raw), `buffers of ${sizes.join('/')} bytes`).to.equal(true);
      // A chunk handed on stays as it was while later ones are read.
      for (const c of chunks) expect(c.data.equals(raw.subarray(c.diskOffset, c.diskOffset + c.data.length)), `chunk ${c.chunkNumber}`).to.equal(true);
    }
  });

  it('skips zero chunks, stores incompressible chunks as is and deflates the rest', async () => {
    const raw = Buffer.concat([crypto.randomBytes(CS), Buffer.alloc(2 * CS), textish(CS)]);
    fs.writeFileSync(path.join(dir, 'raw'), raw);
    const s = await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
    expect(s.storedChunks).to.equal(2);
    const { header, entries } = parseHeaderAndIndex(fs.readFileSync(path.join(dir, 'a.ksimg')));
    expect(header.chunkCount).to.equal(4);
    expect(entries.map((e) => [e.chunkNumber, e.codec])).to.deep.equal([
      [0, CODEC_STORED],
      [3, CODEC_DEFLATE],
    ]);
    expect(entries[1]!.storedLength).to.be.lessThan(CS / 2);
  });

  it('encodeChunk and decodeChunk are inverse and verify', () => {
    const raw = textish(CS);
    const enc = encodeChunk(raw);
    const entry = { chunkNumber: 7, codec: enc.codec, offset: 0, storedLength: enc.stored.length, rawLength: raw.length, sha256: enc.sha256 };
    expect(decodeChunk(entry, enc.stored).equals(raw)).to.equal(true);
    const bad = Buffer.from(enc.stored);
    bad[Math.floor(bad.length / 2)]! ^= 0x40;
    expect(() => decodeChunk(entry, bad))
      .to.throw(CorruptImageError)
      .with.property('chunk', 7);
    expect(() => decodeChunk({ ...entry, rawLength: 100 }, enc.stored)).to.throw(CorruptImageError);
  });

  it('names the chunk whose byte was flipped, from a file and from a stream', async () => {
    fs.writeFileSync(path.join(dir, 'raw'), mixed());
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
    const img = fs.readFileSync(path.join(dir, 'a.ksimg'));
    const { entries } = parseHeaderAndIndex(img);
    // A stored chunk and the largest deflated one (mostly literals: a flip there cannot decode to the same bytes).
    const stored = entries.find((e) => e.codec === CODEC_STORED)!;
    const deflated = entries.filter((e) => e.codec === CODEC_DEFLATE).sort((a, b) => b.storedLength - a.storedLength)[0]!;
    for (const victim of [stored, deflated]) {
      const bad = Buffer.from(img);
      bad[victim.offset + Math.floor(victim.storedLength / 2)]! ^= 0x01;
      fs.writeFileSync(path.join(dir, 'bad.ksimg'), bad);
      expect((await corruptCode(drain(path.join(dir, 'bad.ksimg')))).chunk).to.equal(victim.chunkNumber);
      expect((await corruptCode(drain(Readable.from([bad])))).chunk).to.equal(victim.chunkNumber);
    }
  });

  it('catches a truncated file before yielding, naming the chunk; a truncated stream at that chunk', async () => {
    fs.writeFileSync(path.join(dir, 'raw'), mixed());
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
    const img = fs.readFileSync(path.join(dir, 'a.ksimg'));
    const { entries } = parseHeaderAndIndex(img);
    const last = entries[entries.length - 1]!;
    const cut = img.subarray(0, last.offset + 10);
    fs.writeFileSync(path.join(dir, 'cut.ksimg'), cut);
    let yielded = 0;
    const e1 = await corruptCode(
      (async () => {
        for await (const _ of readImage(path.join(dir, 'cut.ksimg'))) yielded++;
      })(),
    );
    expect(e1.chunk).to.equal(last.chunkNumber);
    expect(yielded).to.equal(0);
    expect((await corruptCode(drain(Readable.from([cut])))).chunk).to.equal(last.chunkNumber);
    expect((await corruptCode(drain(Readable.from([img.subarray(0, 100)])))).message).to.match(/truncated header/);
  });

  it('rejects trailing bytes and a damaged header or index', async () => {
    fs.writeFileSync(path.join(dir, 'raw'), mixed());
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
    const img = fs.readFileSync(path.join(dir, 'a.ksimg'));
    await corruptCode(drain(Readable.from([Buffer.concat([img, Buffer.from('junk')])])));
    const h = Buffer.from(img);
    h[20]! ^= 1;
    expect(() => parseHeader(h)).to.throw(CorruptImageError, /header checksum/);
    const ix = Buffer.from(img);
    ix[HEADER_SIZE + INDEX_ENTRY_SIZE + 30]! ^= 1;
    expect(() => parseHeaderAndIndex(ix)).to.throw(CorruptImageError, /index checksum/);
    expect(() => parseHeader(Buffer.from('KSWIMG0\0' + ' '.repeat(200)))).to.throw(CorruptImageError, /magic/);
  });

  describe('hostile headers', () => {
    const base = {
      version: 1,
      chunkSize: CS,
      rawSize: CS * 4,
      chunkCount: 4,
      storedChunks: 1,
      dataOffset: HEADER_SIZE + INDEX_ENTRY_SIZE,
      dataLength: 100,
      sha256: '00'.repeat(32),
      indexSha256: '00'.repeat(32),
    };
    it('accepts a consistent header', () => {
      expect(parseHeader(encodeHeader(base)).chunkCount).to.equal(4);
    });
    const bad: [string, Partial<typeof base>][] = [
      ['an absurd chunk count', { chunkCount: 0xffffffff }],
      ['more stored chunks than chunks', { storedChunks: 5 }],
      ['a gigantic index', { rawSize: 2 ** 46, chunkCount: 2 ** 30, storedChunks: 2 ** 30, dataOffset: HEADER_SIZE + 2 ** 30 * INDEX_ENTRY_SIZE, dataLength: 2 ** 30 }],
      ['a data offset inside the index', { dataOffset: HEADER_SIZE }],
      ['a data offset far past the index', { dataOffset: 2 ** 40 }],
      ['a chunk size that is not a power of two', { chunkSize: CS + 1 }],
      ['a chunk size too large', { chunkSize: 2 ** 30, chunkCount: 1 }],
      ['more data than chunks can hold', { dataLength: CS * 2 }],
    ];
    for (const [what, patch] of bad) {
      it(`rejects ${what} from the header alone`, async () => {
        const hdr = encodeHeader({ ...base, ...patch });
        expect(() => parseHeader(hdr)).to.throw(CorruptImageError);
        fs.writeFileSync(path.join(dir, 'h.ksimg'), hdr);
        const before = process.memoryUsage().arrayBuffers;
        await corruptCode(drain(path.join(dir, 'h.ksimg')));
        await corruptCode(drain(Readable.from([hdr])));
        expect(process.memoryUsage().arrayBuffers - before).to.be.lessThan(64 * 1024 * 1024);
      });
    }
    it('rejects a raw size beyond 2^53', () => {
      const hdr = encodeHeader(base);
      hdr.writeBigUInt64LE(2n ** 60n, 32);
      crypto.createHash('sha256').update(hdr.subarray(0, 120)).digest().copy(hdr, 120, 0, 8);
      expect(() => parseHeader(hdr)).to.throw(CorruptImageError, /absurd/);
    });
    it('rejects an index whose offsets point past the end of the file', async () => {
      const entry = Buffer.alloc(INDEX_ENTRY_SIZE);
      entry.writeUInt32LE(0, 0);
      entry.writeUInt8(CODEC_STORED, 4);
      entry.writeBigUInt64LE(BigInt(HEADER_SIZE + INDEX_ENTRY_SIZE), 8);
      entry.writeUInt32LE(CS, 16);
      entry.writeUInt32LE(CS, 20);
      const hdr = encodeHeader({ ...base, dataLength: CS, indexSha256: sha256(entry) });
      fs.writeFileSync(path.join(dir, 'h.ksimg'), Buffer.concat([hdr, entry, Buffer.alloc(10)]));
      const err = await corruptCode(drain(path.join(dir, 'h.ksimg')));
      expect(err.chunk).to.equal(0);
      expect(err.message).to.match(/past end of file/);
    });
  });

  describe('applyImage', () => {
    let raw: Buffer;
    beforeEach(async () => {
      raw = mixed();
      fs.writeFileSync(path.join(dir, 'raw'), raw);
      await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: CS });
    });

    it('writes a fresh target file and returns the raw SHA-256', async () => {
      const target = path.join(dir, 'disk');
      expect(await applyImage(path.join(dir, 'a.ksimg'), target)).to.equal(sha256(raw));
      expect(fs.readFileSync(target).equals(raw)).to.equal(true);
    });

    it('with writeZeros clears a dirty target; without it old bytes survive in the zero chunks', async () => {
      const target = path.join(dir, 'disk');
      const dirt = Buffer.alloc(raw.length, 0xee);
      fs.writeFileSync(target, dirt);
      await applyImage(path.join(dir, 'a.ksimg'), target);
      expect(fs.readFileSync(target).equals(raw)).to.equal(false);
      fs.writeFileSync(target, dirt);
      expect(await applyImage(fs.createReadStream(path.join(dir, 'a.ksimg')), target, { writeZeros: true })).to.equal(sha256(raw));
      expect(fs.readFileSync(target).equals(raw)).to.equal(true);
    });

    it('with verifyTarget reads the target back; confirmApplied refuses unwritten chunks and a target that does not hold the image', async () => {
      const target = path.join(dir, 'disk');
      expect(await applyImage(path.join(dir, 'a.ksimg'), target, { verifyTarget: true })).to.equal(sha256(raw));
      const { header } = parseHeaderAndIndex(fs.readFileSync(path.join(dir, 'a.ksimg')));
      expect(await confirmApplied(target, header, { unwritten: 0, readBack: true })).to.equal(sha256(raw));
      const missing = await corruptCode(confirmApplied(target, header, { unwritten: 2, first: 5 }));
      expect(missing.chunk).to.equal(5);
      expect(missing.message).to.match(/2 chunk\(s\) of \d+ never written/);
      const fd = fs.openSync(target, 'r+');
      fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, raw.length - 1);
      fs.closeSync(fd);
      expect(await confirmApplied(target, header, { unwritten: 0 })).to.equal(header.sha256);
      expect((await corruptCode(confirmApplied(target, header, { unwritten: 0, readBack: true }))).message).to.match(/image SHA-256 mismatch/);
    });

    it('streams many chunks split at odd places onto the target exactly, its buffers reused in turn', async () => {
      // More stored chunks than the reader's ring, random (stored) and text (deflated), with a tail of 1234 bytes.
      const big = Buffer.concat([crypto.randomBytes(7 * CS), Buffer.alloc(2 * CS), textish(9 * CS), crypto.randomBytes(3 * CS + 1234)]);
      fs.writeFileSync(path.join(dir, 'big'), big);
      await writeImage(path.join(dir, 'big'), path.join(dir, 'big.ksimg'), { chunkSize: CS });
      const img = fs.readFileSync(path.join(dir, 'big.ksimg'));
      const parts: Buffer[] = [];
      for (let at = 0, k = 0; at < img.length; k++) {
        const n = [1, 7 * 1024 + 3, 65536, 100_000, 13][k % 5]!;
        parts.push(img.subarray(at, at + n));
        at += n;
      }
      const target = path.join(dir, 'disk');
      fs.writeFileSync(target, Buffer.alloc(big.length, 0xee));
      expect(await applyImage(Readable.from(parts), target, { writeZeros: true })).to.equal(sha256(big));
      expect(fs.readFileSync(target).equals(big)).to.equal(true);
      fs.rmSync(target);
      expect(await applyImage(path.join(dir, 'big.ksimg'), target)).to.equal(sha256(big));
      expect(fs.readFileSync(target).equals(big)).to.equal(true);
    });

    it('never writes a corrupt chunk', async () => {
      const img = fs.readFileSync(path.join(dir, 'a.ksimg'));
      const { entries } = parseHeaderAndIndex(img);
      const victim = entries[entries.length - 1]!;
      img[victim.offset + 3]! ^= 0xff;
      const target = path.join(dir, 'disk');
      const err = await corruptCode(applyImage(Readable.from([img]), target));
      expect(err.chunk).to.equal(victim.chunkNumber);
      const written = fs.readFileSync(target).subarray(victim.chunkNumber * CS, victim.chunkNumber * CS + victim.rawLength);
      expect(written.equals(Buffer.alloc(victim.rawLength))).to.equal(true);
    });
  });

  it('refuses a bad chunk size and removes its output on failure', async () => {
    fs.writeFileSync(path.join(dir, 'raw'), crypto.randomBytes(CS * 3));
    try {
      await writeImage(path.join(dir, 'raw'), path.join(dir, 'a.ksimg'), { chunkSize: 3000 });
      expect.fail('accepted a bad chunk size');
    } catch (err) {
      expect(err).to.be.instanceOf(InvalidInputError);
    }
    const ac = new AbortController();
    const out = path.join(dir, 'b.ksimg');
    const p = writeImage(Readable.from([crypto.randomBytes(CS * 3)]), out, { chunkSize: CS, concurrency: 1, signal: ac.signal }, () => ac.abort());
    await p.then(
      () => expect.fail('not aborted'),
      () => {},
    );
    expect(fs.readdirSync(dir)).to.deep.equal(['raw']);
  });
});
