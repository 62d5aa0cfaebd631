import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidInputError } from '../../protocol/errors.js';
import { blockCountFor, decodePacket, encodeData, encodeRequest, testBit, type DataPacket, type RequestItem } from '../../protocol/frisbee.js';
import { decodeChunk, parseHeaderAndIndex, writeImage, type IndexEntry } from '../../protocol/image-format.js';
import { ChunkTable } from '../../node-installer/fetch/multicast-state.js';
import { until } from '../helpers/until.js';
import { silentLogger } from '../../server/log.js';
import { PairPool, parseGroupPool, parsePortPool } from '../../server/multicast/pool.js';
import { PassLog, SendQueue, splitRequest } from '../../server/multicast/queue.js';
import { RateController, TokenBucket } from '../../server/multicast/rate.js';
import { MulticastSender } from '../../server/multicast/sender.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const ids = { imageId: 1, sessionId: 2 };

function entry(chunkNumber: number, storedLength: number): IndexEntry {
  return { chunkNumber, codec: 0, offset: 0, storedLength, rawLength: storedLength, sha256: Buffer.alloc(32) };
}

function dataFor(chunk: number, block: number, storedLength = 3000, blockSize = 1400): DataPacket {
  const p = { ...ids, seq: 0, chunk, block, blockCount: blockCountFor(storedLength, blockSize), storedLength, blockSize };
  const payload = Buffer.alloc(Math.min(blockSize, storedLength - block * blockSize), chunk);
  return (decodePacket(encodeData({ ...p, payload })) as { packet: DataPacket }).packet;
}

describe('multicast sender parts', () => {
  it('SendQueue merges requests for a waiting chunk, a whole request absorbing bitmaps', () => {
    const q = new SendQueue();
    expect(q.add(4, Buffer.from([0b0001]))).to.equal(true);
    expect(q.add(4, Buffer.from([0b0100]))).to.equal(false);
    expect(q.add(7)).to.equal(true);
    expect(q.add(7, Buffer.from([1]))).to.equal(false);
    expect(q.length).to.equal(2);
    expect(q.shift()).to.deep.equal({ chunk: 4, blocks: Buffer.from([0b0101]) });
    expect(q.shift()).to.deep.equal({ chunk: 7 });
    expect(q.shift()).to.equal(undefined);
  });

  it('PassLog remembers the seq of recent blocks only', () => {
    const log = new PassLog(2);
    log.begin(1, 3)[2] = 10;
    log.begin(2, 3);
    expect(log.lastSent(1, 2)).to.equal(10);
    expect(log.lastSent(1, 0)).to.equal(undefined);
    log.begin(3, 3);
    expect(log.has(1)).to.equal(false);
  });

  it('splitRequest sends ahead in the current pass, skips blocks still on their way, queues the rest', () => {
    const passes = new PassLog();
    const seqs = passes.begin(3, 10);
    for (let b = 0; b < 6; b++) seqs[b] = 100 + b;
    const whole = splitRequest({ chunk: 3 }, 10, 6, passes, 102);
    expect([...Array(10).keys()].filter((b) => testBit(whole.ahead, b))).to.deep.equal([6, 7, 8, 9]);
    expect(
      [...Array(10).keys()].filter((b) => testBit(whole.behind!, b)),
      'sent at seq <= 102: lost',
    ).to.deep.equal([0, 1, 2]);
    const none = splitRequest({ chunk: 3, blocks: Buffer.from([0b00110000, 0]) }, 10, undefined, passes, 103);
    expect(none.behind, 'blocks 4 and 5 went out after seq 103').to.equal(undefined);
  });

  it('TokenBucket holds the average rate', () => {
    let t = 0;
    const b = new TokenBucket(1_000_000, 2, () => t);
    let sent = 0;
    for (; t < 1000; t += 0.5) while (b.take(1440)) sent += 1440;
    expect(sent).to.be.within(950_000, 1_100_000);
    expect(b.waitMs(1440)).to.be.at.least(1);
  });

  it('RateController backs off on heavy loss, holds on moderate loss, recovers when quiet', () => {
    const c = new RateController({ cap: 100, min: 10, lossHigh: 0.1, lossLow: 0.02 });
    c.report(800, 200);
    expect(c.adapt()).to.equal(70);
    c.report(950, 50);
    expect(c.adapt()).to.equal(70);
    c.report(10, 10);
    expect(c.adapt(), 'too few samples').to.equal(70);
    c.report(1000, 0);
    expect(c.adapt()).to.equal(80);
    for (let i = 0; i < 20; i++) {
      c.report(10, 990);
      c.adapt();
    }
    expect(c.rate).to.equal(10);
  });

  it('pools parse and never hand out the same group:port twice', () => {
    expect(parseGroupPool('239.255.77.1-239.255.77.3')).to.deep.equal(['239.255.77.1', '239.255.77.2', '239.255.77.3']);
    expect(parsePortPool('7700')).to.deep.equal([7700]);
    expect(() => parseGroupPool('10.0.0.1-10.0.0.2')).to.throw(InvalidInputError);
    expect(() => parseGroupPool('239.255.77.9-239.255.77.1')).to.throw(InvalidInputError);
    expect(() => parsePortPool('80-90')).to.throw(InvalidInputError);
    expect(() => parsePortPool('x')).to.throw(InvalidInputError);
    const pool = new PairPool(parseGroupPool('239.1.1.1-239.1.1.2'), parsePortPool('7700-7701'));
    const got = [pool.take(), pool.take(), pool.take(), pool.take()].map((p) => `${p!.group}:${p!.port}`);
    expect(new Set(got).size).to.equal(4);
    expect(got.slice(0, 2)).to.deep.equal(['239.1.1.1:7700', '239.1.1.2:7701']);
    expect(pool.take()).to.equal(undefined);
    pool.release({ group: '239.1.1.2', port: 7700 });
    expect(pool.take()).to.deep.equal({ group: '239.1.1.2', port: 7700 });
  });
});

describe('multicast receiver state (ChunkTable)', () => {
  const opts = { window: 2, requestTimeoutMs: 100, partialTimeoutMs: 30 };

  it('asks for a window of chunks, backs off its re-asks, and stays quiet about chunks others asked for', () => {
    const t = new ChunkTable([entry(0, 3000), entry(1, 3000), entry(5, 3000), entry(6, 3000)], 8);
    t.othersAsked([{ chunk: 0 }], 0);
    expect(t.plan(0, opts).map((i) => i.chunk)).to.deep.equal([1]);
    expect(t.plan(50, opts)).to.deep.equal([]);
    expect(t.plan(150, opts).map((i) => i.chunk)).to.deep.equal([0, 1]);
    expect(
      t.plan(250, opts).map((i) => i.chunk),
      'chunk 1 asked twice: waits twice as long',
    ).to.deep.equal([0]);
    expect(t.plan(360, opts).map((i) => i.chunk)).to.deep.equal([1]);
  });

  it('asks for exactly the missing blocks once a pass is over, and completes', () => {
    const t = new ChunkTable([entry(0, 3000), entry(1, 3000)], 8);
    t.plan(0, opts);
    expect(t.add(dataFor(0, 0), 1)).to.equal('stored');
    expect(t.add(dataFor(0, 2), 2)).to.equal('stored');
    expect(t.add(dataFor(0, 2), 2)).to.equal('duplicate');
    expect(t.add(dataFor(1, 0), 3)).to.equal('stored');
    const items: RequestItem[] = t.plan(4, opts);
    const repair = items.find((i) => i.chunk === 0)!;
    expect(repair.blocks).to.have.length(1);
    expect([0, 1, 2].map((b) => testBit(repair.blocks!, b))).to.deep.equal([false, true, false]);
    expect(t.add(dataFor(0, 1), 5)).to.equal('complete');
    const { stored } = t.take(0);
    expect(stored.equals(Buffer.alloc(3000, 0))).to.equal(true);
    t.markWritten(0);
    expect(t.add(dataFor(0, 1), 6)).to.equal('done');
    expect(t.written).to.equal(1);
  });

  it('assembles the next chunk in the buffer of one written or failed, whatever its stored length', () => {
    const t = new ChunkTable([entry(0, 3000), entry(1, 2000), entry(2, 2500)], 1);
    const fill = (chunk: number, len: number) => {
      let r = '';
      for (let b = 0; b * 1400 < len; b++) r = t.add(dataFor(chunk, b, len), 0);
      return r;
    };
    expect(fill(0, 3000)).to.equal('complete');
    const first = t.take(0).stored;
    t.markWritten(0);
    expect(fill(1, 2000)).to.equal('complete');
    const second = t.take(1).stored;
    expect(second.buffer, 'the same memory').to.equal(first.buffer);
    expect(second.equals(Buffer.alloc(2000, 1))).to.equal(true);
    t.reset(1); // failed verification: the buffer is free again, the chunk wanted again
    expect(fill(2, 2500)).to.equal('complete');
    expect(t.take(2).stored.buffer).to.equal(first.buffer);
    expect(t.take(2).stored.equals(Buffer.alloc(2500, 2))).to.equal(true);
  });

  it('drops data beyond its buffer budget and data that contradicts the index', () => {
    const t = new ChunkTable([entry(0, 3000), entry(1, 3000)], 1);
    expect(t.add(dataFor(0, 0), 0)).to.equal('stored');
    expect(t.add(dataFor(1, 0), 0)).to.equal('no_buffer');
    expect(t.add(dataFor(0, 0, 2999), 0)).to.equal('mismatch');
    expect(t.add(dataFor(4, 0), 0)).to.equal('not_stored');
  });
});

describe('multicast sender under hostile datagrams', function () {
  this.timeout(20_000);
  const group = `239.255.${200 + Math.floor(Math.random() * 50)}.7`;
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  let dir: string;
  let sender: MulticastSender;
  let listener: dgram.Socket;
  let attacker: dgram.Socket;
  const seen: DataPacket[] = [];

  before(async () => {
    dir = tmpDir('ksfrisbee-');
    fs.writeFileSync(path.join(dir, 'raw'), Buffer.concat([crypto.randomBytes(100_000), Buffer.alloc(64 * 1024 * 2), crypto.randomBytes(5000)]));
    await writeImage(path.join(dir, 'raw'), path.join(dir, 'img.ksimg'), { chunkSize: 64 * 1024 });
    sender = new MulticastSender({ imagePath: path.join(dir, 'img.ksimg'), group, port, sessionId: 77, log: silentLogger(), rateBytesPerSec: 20e6 });
    await sender.start();
    listener = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => listener.bind(port, group, r));
    listener.addMembership(group, '127.0.0.1');
    listener.on('message', (m) => {
      const d = decodePacket(m, { sessionId: 77 });
      if (d.ok && d.packet.type === 'data') seen.push({ ...d.packet, payload: Buffer.from(d.packet.payload) });
    });
    attacker = dgram.createSocket('udp4');
    await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', r));
    attacker.setMulticastInterface('127.0.0.1');
  });

  after(async () => {
    attacker.close();
    listener.close();
    await sender.close();
    await sender.close();
    cleanupTmpDirs();
  });

  const send = (b: Buffer) => new Promise<void>((r) => attacker.send(b, port, group, () => r()));

  it('counts and drops garbage, foreign and absurd requests, then still serves a valid one', async () => {
    const good = { imageId: sender.imageId, sessionId: 77 };
    const h = sender.header;
    for (let i = 0; i < 300; i++) await send(crypto.randomBytes(1 + (i % 1400)));
    await send(encodeRequest({ ...good, sessionId: 78 }, 1, [{ chunk: 0 }]));
    await send(encodeRequest({ ...good, imageId: good.imageId ^ 1 }, 1, [{ chunk: 0 }]));
    await send(encodeRequest(good, 1, [{ chunk: h.chunkCount + 5 }]));
    await send(encodeRequest(good, 1, [{ chunk: 2 }]));
    await send(encodeRequest(good, 1, [{ chunk: 0, blocks: Buffer.alloc(500) }]));
    await send(encodeRequest(good, 1, [{ chunk: 0 }]).subarray(0, 30));
    const st = await until('every hostile datagram to be dropped', () => (sender.stats().dropped.total >= 306 ? sender.stats() : undefined));
    expect(st.dropped.total).to.be.at.least(305);
    for (const reason of ['bad_magic', 'wrong_session', 'wrong_image', 'bad_chunk', 'not_stored', 'bad_bitmap']) {
      expect(st.dropped.byReason[reason], reason).to.be.greaterThan(0);
    }
    expect(st.datagramsSent, 'nothing sent for hostile requests').to.equal(0);

    const buf = fs.readFileSync(path.join(dir, 'img.ksimg'));
    const e = parseHeaderAndIndex(buf).entries[0]!;
    await send(encodeRequest(good, 9, [{ chunk: e.chunkNumber }]));
    const count = blockCountFor(e.storedLength, sender.blockSize);
    await until(`all ${count} blocks of chunk ${e.chunkNumber}`, () => new Set(seen.filter((p) => p.chunk === e.chunkNumber).map((p) => p.block)).size >= count, 3000, 20);
    const stored = Buffer.alloc(e.storedLength);
    for (const p of seen) if (p.chunk === e.chunkNumber) p.payload.copy(stored, p.block * p.blockSize);
    const raw = decodeChunk(e, stored);
    expect(raw.equals(fs.readFileSync(path.join(dir, 'raw')).subarray(0, 64 * 1024))).to.equal(true);
    expect(sender.stats().receivers).to.be.at.least(1);
  });
});
