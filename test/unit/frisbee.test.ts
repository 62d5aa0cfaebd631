import crypto from 'node:crypto';
import { expect } from 'chai';
import {
  blockCountFor,
  blockSizeForMtu,
  DATA_HEADER_SIZE,
  decodePacket,
  DEFAULT_BLOCK_SIZE,
  DropCounter,
  encodeData,
  encodeMember,
  encodeReport,
  encodeRequest,
  imageIdFromSha256,
  MAX_BITMAP_BYTES,
  newBitmap,
  packRequests,
  peekType,
  PacketType,
  seqAfter,
  setBit,
  testBit,
  type DataPacket,
  type RequestPacket,
} from '../../protocol/frisbee.js';
import { InvalidInputError } from '../../protocol/errors.js';

const ids = { imageId: 0xdeadbeef, sessionId: 0x01020304 };
const expectIds = { ...ids, chunkCount: 100 };

function data(over: Partial<Omit<DataPacket, 'type'>> = {}): Buffer {
  const storedLength = over.storedLength ?? 3000;
  const blockSize = over.blockSize ?? 1400;
  const block = over.block ?? 1;
  const payload = over.payload ?? Buffer.alloc(Math.min(blockSize, storedLength - block * blockSize), 0xab);
  return encodeData({ ...ids, seq: 7, chunk: 5, block, blockCount: blockCountFor(storedLength, blockSize), storedLength, blockSize, ...over, payload });
}

function dropReason(buf: Buffer, x = expectIds): string {
  const d = decodePacket(buf, x);
  expect(d.ok, 'should be dropped').to.equal(false);
  return (d as { reason: string }).reason;
}

describe('frisbee packets: encode and decode', () => {
  it('round-trips DATA with every field, the payload a view of the datagram', () => {
    const buf = data();
    expect(buf.length).to.equal(DATA_HEADER_SIZE + 1400);
    const d = decodePacket(buf, expectIds);
    expect(d.ok).to.equal(true);
    const p = (d as { packet: DataPacket }).packet;
    expect(p).to.include({ type: 'data', imageId: ids.imageId, sessionId: ids.sessionId, seq: 7, chunk: 5, block: 1, blockCount: 3, storedLength: 3000, blockSize: 1400 });
    expect(p.payload.equals(Buffer.alloc(1400, 0xab))).to.equal(true);
    const last = decodePacket(data({ block: 2 }), expectIds);
    expect((last as { packet: DataPacket }).packet.payload.length).to.equal(200);
  });

  it('default DATA datagrams fit a 1500-byte MTU', () => {
    expect(DATA_HEADER_SIZE + DEFAULT_BLOCK_SIZE + 8 + 20).to.be.at.most(1500);
    expect(blockSizeForMtu(1500)).to.equal(1500 - 28 - DATA_HEADER_SIZE);
    expect(() => blockSizeForMtu(200)).to.throw(InvalidInputError);
  });

  it('round-trips REQUEST with whole chunks, block bitmaps and lastSeq', () => {
    const map = newBitmap(20);
    setBit(map, 0);
    setBit(map, 19);
    const buf = encodeRequest(ids, 42, [{ chunk: 3 }, { chunk: 9, blocks: map }], 0xfffffff0);
    const p = (decodePacket(buf, expectIds) as { packet: RequestPacket }).packet;
    expect(p.type).to.equal('request');
    expect(p.receiverId).to.equal(42);
    expect(p.lastSeq).to.equal(0xfffffff0);
    expect(p.items[0]).to.deep.equal({ chunk: 3 });
    expect(p.items[1]!.chunk).to.equal(9);
    expect(testBit(p.items[1]!.blocks!, 0) && testBit(p.items[1]!.blocks!, 19) && !testBit(p.items[1]!.blocks!, 1)).to.equal(true);
    const noSeq = (decodePacket(encodeRequest(ids, 1, [{ chunk: 0 }]), expectIds) as { packet: RequestPacket }).packet;
    expect(noSeq).to.not.have.property('lastSeq');
  });

  it('round-trips JOIN, LEAVE and REPORT', () => {
    expect(decodePacket(encodeMember('join', ids, 9), expectIds)).to.deep.include({ ok: true });
    expect((decodePacket(encodeMember('leave', ids, 9), expectIds) as { packet: { type: string } }).packet.type).to.equal('leave');
    const r = decodePacket(encodeReport(ids, 9, 1000, 50), expectIds) as { packet: { received: number; lost: number } };
    expect(r.packet).to.include({ received: 1000, lost: 50 });
  });

  it('packs many request items into datagrams no larger than the limit, in order', () => {
    const items = Array.from({ length: 300 }, (_, i) => (i % 3 ? { chunk: i } : { chunk: i, blocks: crypto.randomBytes(94) }));
    const bufs = packRequests(ids, 5, items, 77, 1472);
    expect(bufs.length).to.be.greaterThan(1);
    const back = bufs.flatMap((b) => {
      expect(b.length).to.be.at.most(1472);
      return (decodePacket(b, { ...ids, chunkCount: 1000 }) as { packet: RequestPacket }).packet.items;
    });
    expect(back.map((i) => i.chunk)).to.deep.equal(items.map((i) => i.chunk));
  });

  it('refuses to encode inconsistent DATA', () => {
    expect(() => data({ blockCount: 9 })).to.throw(InvalidInputError);
    expect(() => data({ block: 3, payload: Buffer.alloc(10) })).to.throw(InvalidInputError);
    expect(() => encodeData({ ...ids, seq: 0, chunk: 0, block: 0, blockCount: 1, storedLength: 10, blockSize: 1400, payload: Buffer.alloc(9) })).to.throw(InvalidInputError);
  });

  it('derives the image id from the raw SHA-256 and compares sequence numbers modulo 2^32', () => {
    expect(imageIdFromSha256('deadbeef' + '0'.repeat(56))).to.equal(0xdeadbeef);
    expect(seqAfter(5, 4)).to.equal(true);
    expect(seqAfter(4, 5)).to.equal(false);
    expect(seqAfter(2, 0xfffffffe)).to.equal(true);
    expect(seqAfter(7, 7)).to.equal(false);
  });
});

describe('frisbee packets: hostile datagrams are dropped with a reason, never thrown', () => {
  it('every truncation of every packet type is dropped', () => {
    const samples = [data(), encodeRequest(ids, 1, [{ chunk: 1, blocks: Buffer.alloc(3) }], 9), encodeMember('join', ids, 1), encodeReport(ids, 1, 2, 3)];
    for (const s of samples) {
      for (let n = 0; n < s.length; n++) {
        const reason = dropReason(s.subarray(0, n));
        expect(['truncated', 'bad_length', 'bad_magic', 'bad_version', 'unknown_type']).to.include(reason);
      }
    }
  });

  it('wrong magic, version, type, image or session', () => {
    const b = data();
    const mut = (at: number, v: number) => {
      const c = Buffer.from(b);
      c[at] = v;
      return c;
    };
    expect(dropReason(mut(0, 0x58))).to.equal('bad_magic');
    expect(dropReason(mut(4, 2))).to.equal('bad_version');
    expect(dropReason(mut(5, 0))).to.equal('unknown_type');
    expect(dropReason(mut(5, 77))).to.equal('unknown_type');
    expect(dropReason(mut(8, 0))).to.equal('wrong_image');
    expect(dropReason(mut(12, 0))).to.equal('wrong_session');
    expect(dropReason(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).to.equal('bad_magic');
    expect(dropReason(Buffer.alloc(0))).to.equal('truncated');
  });

  it('absurd chunk numbers, block indexes, counts and lengths', () => {
    const b = data();
    const with32 = (at: number, v: number) => {
      const c = Buffer.from(b);
      c.writeUInt32LE(v, at);
      return c;
    };
    expect(dropReason(with32(20, 100))).to.equal('bad_chunk');
    expect(dropReason(with32(20, 0xffffffff))).to.equal('bad_chunk');
    expect(dropReason(with32(24, 3))).to.equal('bad_block');
    expect(dropReason(with32(24, 0xffffffff))).to.equal('bad_block');
    expect(dropReason(with32(28, 0xffffffff))).to.equal('bad_block');
    expect(dropReason(with32(32, 0))).to.equal('bad_length');
    expect(dropReason(with32(32, 0xffffffff))).to.equal('bad_length');
    const tiny = Buffer.from(b);
    tiny.writeUInt16LE(16, 36);
    expect(dropReason(tiny)).to.equal('bad_block');
    expect(dropReason(Buffer.concat([b, Buffer.alloc(1)]))).to.equal('bad_length');
  });

  it('absurd requests: no items, too many items, oversize bitmaps, trailing bytes, out-of-range chunks', () => {
    const r = encodeRequest(ids, 1, [{ chunk: 1 }]);
    const c = Buffer.from(r);
    c.writeUInt16LE(0, 20);
    expect(dropReason(c)).to.equal('bad_request');
    c.writeUInt16LE(65535, 20);
    expect(dropReason(c)).to.equal('bad_request');
    const big = Buffer.from(r);
    big.writeUInt16LE(2, 20);
    expect(dropReason(big)).to.equal('truncated');
    const bm = Buffer.from(r);
    bm.writeUInt16LE(MAX_BITMAP_BYTES + 1, 32);
    expect(dropReason(bm)).to.equal('bad_request');
    expect(dropReason(Buffer.concat([r, Buffer.alloc(2)]))).to.equal('bad_length');
    expect(dropReason(encodeRequest(ids, 1, [{ chunk: 1000 }]))).to.equal('bad_chunk');
  });

  it('survives 30,000 random and mutated datagrams without throwing, counting every drop', () => {
    const counter = new DropCounter();
    const valid = [data(), data({ block: 2 }), encodeRequest(ids, 1, [{ chunk: 1 }, { chunk: 2, blocks: Buffer.alloc(2) }], 3), encodeReport(ids, 1, 1, 1)];
    let dropped = 0;
    for (let i = 0; i < 30_000; i++) {
      let buf: Buffer;
      if (i % 3 === 0) buf = crypto.randomBytes(Math.floor(Math.random() * 1600));
      else {
        buf = Buffer.from(valid[i % valid.length]!);
        for (let k = 0; k < 1 + (i % 4); k++) buf[Math.floor(Math.random() * buf.length)] = Math.floor(Math.random() * 256);
        if (i % 5 === 0) buf = buf.subarray(0, Math.floor(Math.random() * buf.length));
      }
      const d = decodePacket(buf, expectIds);
      if (!d.ok) {
        counter.count(d.reason);
        dropped++;
      } else if (d.packet.type === 'data') {
        expect(d.packet.block).to.be.below(d.packet.blockCount);
        expect(d.packet.chunk).to.be.below(100);
      }
    }
    expect(counter.total).to.equal(dropped);
    expect(counter.snapshot().byReason.bad_magic).to.be.greaterThan(0);
    expect(dropped).to.be.greaterThan(10_000);
  });

  it('peekType recognises only our datagrams', () => {
    expect(peekType(data())).to.equal(PacketType.DATA);
    expect(peekType(Buffer.alloc(40))).to.equal(undefined);
    expect(peekType(Buffer.alloc(3))).to.equal(undefined);
  });
});
