import crypto from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { FileChunkStore, type PieceFile } from '../../node-installer/proxy/file-store.js';
import { PieceMemory } from '../../protocol/piece-memory.js';
import { directSupported } from '../helpers/direct-io.js';
import { skipBecause } from '../helpers/skip.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { rejection } from '../helpers/rejection.js';
import { until } from '../helpers/until.js';

const PIECE = 64 * 1024;
const BLOCK = 16 * 1024;

function store(where: Partial<PieceFile>, pieces: number, last = PIECE, memory?: PieceMemory): FileChunkStore {
  const file = path.join(tmpDir('ks-piece-store-'), 'pieces');
  return new FileChunkStore({ file, onDestroy: 'delete', ...where }, PIECE, (pieces - 1) * PIECE + last, memory);
}

const put = (s: FileChunkStore, i: number, buf: Uint8Array) => new Promise<void>((res, rej) => s.put(i, buf, (err) => (err ? rej(err) : res())));
const get = (s: FileChunkStore, i: number, opts: { offset?: number; length?: number } | null = null) =>
  new Promise<Uint8Array>((res, rej) => s.get(i, opts, (err, buf) => (err ? rej(err) : res(buf!))));
async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  expect((await rejection(p)).message).to.match(re);
}
const readInto = (s: FileChunkStore, i: number, offset: number, length: number, into: Uint8Array, at: number) =>
  new Promise<void>((res, rej) => s.readInto(i, offset, length, into, at, (err) => (err ? rej(err) : res())));
/** A piece of random bytes in a buffer taken from `m`, and a copy of them to compare with. */
function pieceIn(m: PieceMemory): { buf: Buffer; bytes: Buffer } {
  const buf = m.take(PIECE);
  crypto.randomFillSync(buf);
  return { buf, bytes: Buffer.from(buf) };
}
const close = (s: FileChunkStore) => new Promise<void>((res) => s.close(() => res()));

describe('node proxy: the piece file store', () => {
  after(cleanupTmpDirs);

  it('answers whole pieces and blocks, from memory and, once evicted, from the file', async () => {
    // A pool of two pieces: piece 0 is evicted by the time it is read.
    const s = store({ poolBytes: 2 * PIECE }, 4, 1000);
    const data = [0, 1, 2].map(() => crypto.randomBytes(PIECE));
    data.push(crypto.randomBytes(1000));
    for (const [i, d] of data.entries()) await put(s, i, d);
    for (const [i, d] of data.entries()) {
      expect(Buffer.from(await get(s, i)).equals(d), `piece ${i}`).to.equal(true);
      for (let off = 0; off < d.length; off += BLOCK) {
        const length = Math.min(BLOCK, d.length - off);
        expect(Buffer.from(await get(s, i, { offset: off, length })).equals(d.subarray(off, off + length)), `piece ${i} +${off}`).to.equal(true);
      }
    }
    await close(s);
  });

  it('a block of a piece not stored yet fails, and is read once the piece is stored', async () => {
    const s = store({ poolBytes: PIECE }, 2);
    const pieces = [0, 1].map(() => crypto.randomBytes(PIECE));
    await rejects(get(s, 1, { offset: BLOCK, length: BLOCK }), /not stored/);
    await put(s, 1, pieces[1]!);
    await put(s, 0, pieces[0]!); // evicts piece 1 from the pool: it comes from the file
    expect(Buffer.from(await get(s, 1, { offset: BLOCK, length: BLOCK })).equals(pieces[1]!.subarray(BLOCK, 2 * BLOCK))).to.equal(true);
    await close(s);
  });

  it('refuses reads outside the image and wrong-sized pieces', async () => {
    const s = store({}, 2, 1000);
    await rejects(get(s, 2), /outside the image/);
    await rejects(get(s, 1, { offset: 900, length: 200 }), /outside the image/);
    await rejects(get(s, -1), /outside the image/);
    await rejects(put(s, 1, Buffer.alloc(PIECE)), /must be 1000 bytes/);
    await close(s);
    await rejects(get(s, 0), /closed/);
  });

  it("a piece in the memory's buffer: read as copies, and the buffer goes back once written and out of the pool", async () => {
    const m = new PieceMemory();
    const s = store({ poolBytes: PIECE }, 3, PIECE, m);
    const p0 = pieceIn(m);
    await put(s, 0, p0.buf);
    const got = await get(s, 0);
    expect(Buffer.from(got).equals(p0.bytes)).to.equal(true);
    expect(got.buffer, 'a copy').to.not.equal(p0.buf.buffer);
    const block = await get(s, 0, { offset: BLOCK, length: BLOCK });
    expect(block.buffer).to.not.equal(p0.buf.buffer);
    expect(m.freeByteCount, 'still in the pool').to.equal(0);
    const p1 = pieceIn(m);
    await put(s, 1, p1.buf); // piece 0 leaves the pool once it is written
    await until('piece 0 back in the memory', () => m.freeByteCount === PIECE);
    expect(m.take(PIECE), 'the same buffer, reused').to.equal(p0.buf);
    p0.buf.fill(0x55); // its next piece: the store reads piece 0 from its file now
    expect(Buffer.from(await get(s, 0)).equals(p0.bytes)).to.equal(true);
    expect(Buffer.from(got).equals(p0.bytes), 'a copy read earlier is untouched').to.equal(true);
    await close(s);
  });

  it("readInto copies from the pool and reads from the file straight into the caller's buffer", async () => {
    const m = new PieceMemory();
    const s = store({ poolBytes: PIECE }, 3, 1000, m);
    const p = [pieceIn(m), pieceIn(m)];
    await put(s, 0, p[0]!.buf);
    await put(s, 1, p[1]!.buf);
    await until('piece 0 out of the pool', () => m.freeByteCount === PIECE);
    const into = Buffer.alloc(3 * BLOCK);
    await readInto(s, 0, PIECE - BLOCK, BLOCK, into, 0); // from the file
    await readInto(s, 1, 0, 2 * BLOCK, into, BLOCK); // from the pool
    expect(into.equals(Buffer.concat([p[0]!.bytes.subarray(PIECE - BLOCK), p[1]!.bytes.subarray(0, 2 * BLOCK)]))).to.equal(true);
    await rejects(readInto(s, 1, 0, BLOCK, into, 3 * BLOCK - 10), /no room/);
    await rejects(readInto(s, 2, 0, 2000, into, 0), /outside the image/);
    await close(s);
  });

  it('never gives the memory a buffer that is not its own', async () => {
    const m = new PieceMemory();
    const s = store({ poolBytes: PIECE }, 3, PIECE, m);
    const foreign = crypto.randomBytes(PIECE);
    await put(s, 0, foreign);
    expect((await get(s, 0)).buffer, 'a piece of its own is read without a copy').to.equal(foreign.buffer);
    await put(s, 1, pieceIn(m).buf);
    await put(s, 2, pieceIn(m).buf);
    await until('piece 1 back in the memory', () => m.freeByteCount === PIECE);
    expect(m.counts.made).to.equal(2);
    await close(s);
  });

  it("a failed write keeps the memory's piece readable from memory and fails every later put", async () => {
    const m = new PieceMemory();
    // A directory where the file should be: opening it for writing fails.
    const dir = tmpDir('ks-piece-store-dir-');
    const s = new FileChunkStore({ file: dir, onDestroy: 'keep', poolBytes: PIECE }, PIECE, 3 * PIECE, m);
    const p0 = pieceIn(m);
    await put(s, 0, p0.buf); // acknowledged once in the pool
    const later = async (): Promise<Error | undefined> =>
      put(s, 1, pieceIn(m).buf).then(
        () => undefined,
        (err: Error) => err,
      );
    expect((await until('a later put fails', later)).message).to.match(/EISDIR/);
    expect(Buffer.from(await get(s, 0)).equals(p0.bytes)).to.equal(true);
    expect(m.freeByteCount).to.equal(0);
    await close(s);
  });

  it('direct: pieces in the memory go to the file around the page cache, and read back from it once evicted', async function () {
    if (!directSupported(tmpDir('ks-direct-probe-'))) skipBecause(this, 'the temporary folder takes no O_DIRECT opens (tmpfs before Linux 6.6)');
    const m = new PieceMemory();
    const s = store({ poolBytes: PIECE, direct: true }, 4, 1000, m);
    const data = [0, 1, 2].map(() => pieceIn(m));
    const last = crypto.randomBytes(1000);
    for (const [i, d] of data.entries()) await put(s, i, d.buf);
    await put(s, 3, last);
    await until('every piece written', () => s.writeStats !== undefined && s.writeStats.directBytes + s.writeStats.bufferedBytes === 3 * PIECE + 1000);
    expect(s.writeStats).to.include({ directBytes: 3 * PIECE, bufferedBytes: 1000 });
    for (const [i, d] of data.entries()) expect(Buffer.from(await get(s, i)).equals(d.bytes), `piece ${i}`).to.equal(true);
    expect(Buffer.from(await get(s, 3)).equals(last)).to.equal(true);
    await close(s);
  });
});
