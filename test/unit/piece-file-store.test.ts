import crypto from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { FileChunkStore, type PieceFile } from '../../node-installer/proxy/file-store.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { rejection } from '../helpers/rejection.js';

const PIECE = 64 * 1024;
const BLOCK = 16 * 1024;

function store(where: Partial<PieceFile>, pieces: number, last = PIECE): FileChunkStore {
  const file = path.join(tmpDir('ks-piece-store-'), 'pieces');
  return new FileChunkStore({ file, onDestroy: 'delete', ...where }, PIECE, (pieces - 1) * PIECE + last);
}

const put = (s: FileChunkStore, i: number, buf: Uint8Array) => new Promise<void>((res, rej) => s.put(i, buf, (err) => (err ? rej(err) : res())));
const get = (s: FileChunkStore, i: number, opts: { offset?: number; length?: number } | null = null) =>
  new Promise<Uint8Array>((res, rej) => s.get(i, opts, (err, buf) => (err ? rej(err) : res(buf!))));
async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  expect((await rejection(p)).message).to.match(re);
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
});
