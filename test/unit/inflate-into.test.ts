import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { InflateOverflow, inflateInto, inflateIntoSupported } from '../../protocol/inflate-into.js';
import { rejection } from '../helpers/rejection.js';

const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(Math.ceil(n / 44))).subarray(0, n);

describe('inflate into a buffer of the caller (inflateInto)', () => {
  it('this Node.js has the zlib members it uses', () => {
    expect(inflateIntoSupported()).to.equal(true);
  });

  it('inflates text, random bytes and an empty stream into the buffer it is given, chunk after chunk', async () => {
    const out = Buffer.alloc((1 << 20) + 1);
    for (const raw of [text(1 << 20), crypto.randomBytes(300_000), text(12_345), Buffer.alloc(0), crypto.randomBytes(1 << 20)]) {
      const got = await inflateInto(zlib.deflateRawSync(raw), out);
      expect(got.equals(raw)).to.equal(true);
      if (raw.length) expect(got.buffer, 'a view of the buffer given').to.equal(out.buffer);
    }
  });

  it('fits exactly out.length - 1 bytes; more is InflateOverflow, and a bomb costs no more than that', async () => {
    const out = Buffer.alloc(4097);
    expect((await inflateInto(zlib.deflateRawSync(text(4096)), out)).length).to.equal(4096);
    expect(await rejection(inflateInto(zlib.deflateRawSync(text(4097)), out))).to.be.instanceOf(InflateOverflow);
    const bomb = zlib.deflateRawSync(Buffer.alloc(200 << 20));
    const before = process.memoryUsage().arrayBuffers;
    expect(await rejection(inflateInto(bomb, Buffer.alloc((1 << 20) + 1)))).to.be.instanceOf(InflateOverflow);
    expect(process.memoryUsage().arrayBuffers - before, 'bytes kept by the bomb').to.be.below(16 << 20);
    expect((await inflateInto(zlib.deflateRawSync(text(1000)), out)).equals(text(1000)), 'the next one works').to.equal(true);
  });

  it('rejects bad data and truncated data with zlib errors, and keeps working', async () => {
    const out = Buffer.alloc(70_000);
    const good = zlib.deflateRawSync(text(60_000));
    const bad = Buffer.from(good);
    bad[0] = 0xff; // an invalid block type
    expect((await rejection(inflateInto(bad, out))).message).to.match(/invalid|incorrect|unexpected/i);
    expect((await rejection(inflateInto(good.subarray(0, good.length >> 1), out))).message).to.match(/unexpected end/i);
    expect((await inflateInto(good, out)).equals(text(60_000))).to.equal(true);
  });

  it('runs many at once, each into its own buffer', async () => {
    const raws = Array.from({ length: 12 }, (_, i) => (i % 2 ? crypto.randomBytes(200_000 + i) : text(250_000 + i)));
    const outs = raws.map(() => Buffer.alloc(260_000));
    const got = await Promise.all(raws.map((r, i) => inflateInto(zlib.deflateRawSync(r), outs[i]!)));
    got.forEach((g, i) => expect(g.equals(raws[i]!), `stream ${i}`).to.equal(true));
  });
});
