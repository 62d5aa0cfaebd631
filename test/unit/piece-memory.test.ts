import { expect } from 'chai';
import { PieceMemory } from '../../protocol/piece-memory.js';
import { isAligned } from '../../protocol/target-file.js';

describe('piece memory: reused buffers for received pieces', () => {
  it('takes back whole buffers it made and hands them out again for the same length', () => {
    const m = new PieceMemory(1 << 20);
    const a = m.take(1000);
    expect(a.length).to.equal(1000);
    expect(a.byteOffset).to.equal(0);
    expect(a.buffer.byteLength, 'a buffer of its own').to.equal(1000);
    expect(m.owns(a)).to.equal(true);
    expect(m.give(a)).to.equal(true);
    expect(m.freeByteCount).to.equal(1000);
    expect(m.take(999), 'another length is a new buffer').to.not.equal(a);
    expect(m.take(1000)).to.equal(a);
    expect(m.freeByteCount).to.equal(0);
    expect(m.counts).to.deep.equal({ made: 2, reused: 1 });
  });

  it('refuses views, copies and foreign buffers, and a buffer given twice', () => {
    const m = new PieceMemory(1 << 20);
    const a = m.take(4096);
    for (const other of [a.subarray(0, 100), a.subarray(1), Buffer.from(a), Buffer.allocUnsafeSlow(4096), new Uint8Array(4096)]) {
      expect(m.owns(other)).to.equal(false);
      expect(m.give(other)).to.equal(false);
    }
    expect(m.give(a)).to.equal(true);
    expect(m.give(a), 'twice').to.equal(false);
    expect(m.freeByteCount).to.equal(4096);
  });

  it('keeps at most maxFreeBytes waiting; the rest are left to the collector', () => {
    const m = new PieceMemory(10_000);
    const bufs = [m.take(4000), m.take(4000), m.take(4000)];
    expect(bufs.map((b) => m.give(b))).to.deep.equal([true, true, false]);
    expect(m.freeByteCount).to.equal(8000);
    m.drain();
    expect(m.freeByteCount).to.equal(0);
    expect(m.take(4000), 'a new one once drained').to.not.equal(bufs[0]);
  });

  it('hands out whole-block buffers on page boundaries, so direct writes take them without a copy', () => {
    const m = new PieceMemory(1 << 20);
    const pieces = Array.from({ length: 20 }, () => m.take(256 * 1024));
    for (const p of pieces) expect(isAligned(p)).to.equal(true);
    pieces[0]!.fill(1);
    for (const p of pieces.slice(1)) expect(p.includes(1), 'carved buffers do not overlap').to.equal(false);
    expect(m.give(pieces[3]!)).to.equal(true);
    expect(m.take(256 * 1024)).to.equal(pieces[3]);
  });
});
