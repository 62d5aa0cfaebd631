import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { InvalidInputError } from '../../protocol/errors.js';
import { endToEnd } from '../../node-installer/proxy/forward.js';
import { PeerGuard } from '../../node-installer/proxy/guard.js';
import { checkProxyOptions } from '../../node-installer/proxy/options.js';
import { parseRange } from '../../node-installer/proxy/range.js';
import { streamRange, windowPieces } from '../../node-installer/proxy/reader.js';
import type { ImageSession } from '../../node-installer/proxy/session.js';
import type { Torrent, Wire } from '../../protocol/webtorrent.js';
import { parseInfoHash } from '../../server/swarm/tracker.js';
import { silentLogger } from '../../server/log.js';
import { until } from '../helpers/until.js';

describe('swarm proxy: Range parsing', () => {
  const L = 1000;
  const cases: [string | undefined, ReturnType<typeof parseRange>][] = [
    [undefined, { kind: 'whole', start: 0, end: 999 }],
    ['bytes=0-0', { kind: 'partial', start: 0, end: 0 }],
    ['bytes=10-19', { kind: 'partial', start: 10, end: 19 }],
    ['bytes=990-5000', { kind: 'partial', start: 990, end: 999 }],
    ['bytes=500-', { kind: 'partial', start: 500, end: 999 }],
    ['bytes=-10', { kind: 'partial', start: 990, end: 999 }],
    ['bytes=-5000', { kind: 'partial', start: 0, end: 999 }],
    ['BYTES = 1 - 2', { kind: 'partial', start: 1, end: 2 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=20-10', { kind: 'whole', start: 0, end: 999 }],
    ['bytes=0-1,4-5', { kind: 'whole', start: 0, end: 999 }],
    ['items=0-1', { kind: 'whole', start: 0, end: 999 }],
    ['bytes=-', { kind: 'whole', start: 0, end: 999 }],
    ['bytes=abc', { kind: 'whole', start: 0, end: 999 }],
  ];
  for (const [header, want] of cases) {
    it(`${JSON.stringify(header)} -> ${want.kind}`, () => expect(parseRange(header, L)).to.deep.equal(want));
  }
});

describe('swarm proxy: options and headers', () => {
  const log = silentLogger();
  it('applies defaults', () => {
    const o = checkProxyOptions({ frontend: 'http://10.1.1.1:8080', log });
    expect(o).to.include({ host: '127.0.0.1', port: 0, peerPort: 0, linger: 30, stallTimeout: 20 });
  });
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['a non-URL frontend', { frontend: 'frontend' }, /--frontend "frontend" is not a URL/],
    ['a non-http frontend', { frontend: 'ftp://x' }, /http:\/\/ or https:\/\//],
    ['a non-loopback host', { host: '0.0.0.0' }, /loopback only/],
    ['a bad port', { port: 70000 }, /--port must be a port number/],
    ['a negative linger', { linger: -1 }, /--linger/],
    ['a zero stall timeout', { stallTimeout: 0 }, /--stall-timeout .*above 0/],
    ['a bad local address', { localAddress: '127.0.0' }, /--local-address "127.0.0" is not an IP address/],
  ];
  for (const [what, extra, msg] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => checkProxyOptions({ frontend: 'http://127.0.0.1:8080', log, ...extra })).to.throw(InvalidInputError, msg);
    });
  }
  it('drops hop-by-hop headers, Host, and headers named by Connection', () => {
    const out = endToEnd({
      host: 'x',
      connection: 'keep-alive, X-Private',
      'keep-alive': 'timeout=5',
      'x-private': '1',
      'transfer-encoding': 'chunked',
      'x-rhn-provisioning-mac-0': 'eth0 52:54:00:00:00:01',
      accept: '*/*',
    });
    expect(out).to.deep.equal({ 'x-rhn-provisioning-mac-0': 'eth0 52:54:00:00:00:01', accept: '*/*' });
  });
  it('keeps about 8 MiB of pieces prioritised ahead of the reader', () => {
    expect(windowPieces(16 * 1024)).to.equal(64);
    expect(windowPieces(1 << 20)).to.equal(8);
    expect(windowPieces(16 << 20)).to.equal(4);
  });
  it('normalises info-hashes and refuses others', () => {
    expect(parseInfoHash('ABCDEF0123456789ABCDEF0123456789ABCDEF01')).to.equal('abcdef0123456789abcdef0123456789abcdef01');
    expect(() => parseInfoHash('xyz')).to.throw(InvalidInputError, /40 hex digits/);
  });
});

describe('swarm proxy: bad-peer guard', () => {
  const good = Buffer.alloc(32, 1);
  function fakeTorrent(): Torrent & { wiresList: Wire[] } {
    const t = new EventEmitter() as unknown as Torrent & { wiresList: Wire[] };
    const wires: Wire[] = [];
    Object.assign(t, {
      wiresList: wires,
      wires,
      bitfield: { get: () => false },
      store: { get: (_i: number, _o: unknown, cb: (e: null, b: Buffer) => void) => cb(null, good), put: () => undefined },
    });
    return t;
  }
  function fakeWire(t: { wires: Wire[] }, peerId: string): Wire & { destroyed: boolean } {
    const w = new EventEmitter() as Wire & { destroyed: boolean };
    Object.assign(w, { type: 'tcpIncoming', peerId, destroyed: false, remoteAddress: '127.0.0.9', remotePort: 1 });
    w.destroy = () => void (w.destroyed = true);
    t.wires.push(w);
    return w;
  }

  it('bans the only sender of a failed piece at once and refuses it later', () => {
    const t = fakeTorrent();
    const g = new PeerGuard(t, silentLogger());
    const a = fakeWire(t, 'aa');
    g.watch(a);
    a.emit('piece', 3, 0, Buffer.alloc(16, 9));
    a.emit('piece', 3, 16, Buffer.alloc(16, 9));
    g.onFailed(3);
    expect([...g.banned]).to.deep.equal(['aa']);
    expect(a.destroyed).to.equal(true);
    expect(g.isBanned(fakeWire(t, 'aa'))).to.equal(true);
    expect(g.isBanned(fakeWire(t, 'bb'))).to.equal(false);
  });

  it('with several senders, bans exactly those whose blocks differ from the verified piece', async () => {
    const t = fakeTorrent();
    const g = new PeerGuard(t, silentLogger());
    const honest = fakeWire(t, 'honest');
    const liar = fakeWire(t, 'liar');
    g.watch(honest);
    g.watch(liar);
    honest.emit('piece', 5, 0, good.subarray(0, 16));
    liar.emit('piece', 5, 16, Buffer.alloc(16, 2));
    g.onFailed(5);
    expect(g.banned.size).to.equal(0);
    g.onVerified(5);
    await new Promise((r) => setImmediate(r));
    expect([...g.banned]).to.deep.equal(['liar']);
    expect(liar.destroyed).to.equal(true);
    expect(honest.destroyed).to.equal(false);
    expect(g.hashFailures).to.equal(1);
  });
});

describe('swarm proxy: streaming a range', () => {
  const PL = 1000;
  const imageOf = (pl: number, pieces: number) => {
    const b = Buffer.allocUnsafe(pieces * pl - 123);
    for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
    return b;
  };
  /** The ImageSession members streamRange uses, over `image` in pieces of `pl`; every piece is there. */
  const session = (image: Buffer, pl = PL) => {
    const s = {
      pieceLength: pl,
      stats: { served: 0 },
      prioritise: () => undefined,
      unprioritise: () => undefined,
      ensurePiece: () => Promise.resolve(),
      readInto: async (index: number, offset: number, length: number, into: Uint8Array, at: number) => {
        into.set(image.subarray(index * pl + offset, index * pl + offset + length), at);
      },
    };
    return s as unknown as ImageSession & { stats: { served: number } };
  };

  it('hands each piece on as it is until its write is done, however far writes fall behind', async () => {
    // Pieces of 1000 bytes get four buffers; pieces of 3 MiB one (the buffers' bytes are bounded).
    for (const pl of [PL, 3 << 20]) {
      const image = imageOf(pl, 10);
      for (const [start, end] of [
        [0, image.length - 1],
        [1, image.length - 2],
        [2 * pl + 500, 2 * pl + 500],
        [pl - 1, pl],
      ] as const) {
        const taken: Buffer[] = [];
        // A destination that buffers up to 64 MiB (every piece of the range) and finishes each write a turn later.
        const out = new Writable({
          highWaterMark: 64 << 20,
          write(chunk: Buffer, _enc, cb) {
            taken.push(Buffer.from(chunk));
            setImmediate(cb);
          },
        });
        const s = session(image, pl);
        await streamRange(s, start, end, out, new AbortController().signal);
        await new Promise<void>((resolve) => out.end(resolve));
        expect(Buffer.concat(taken).equals(image.subarray(start, end + 1)), `${pl}: ${start}-${end}`).to.equal(true);
        expect(s.stats.served).to.equal(end - start + 1);
      }
    }
  });

  it('stops waiting for a write when the client goes away', async () => {
    // A destination that never finishes a write: the fifth piece waits for the first one's buffer.
    const out = new Writable({ highWaterMark: 1 << 20, write: () => undefined });
    const ac = new AbortController();
    const s = session(imageOf(PL, 10));
    const done = streamRange(s, 0, 10 * PL - 124, out, ac.signal).then(
      () => 'finished',
      (err: Error) => err.message,
    );
    await until('four pieces handed on', () => s.stats.served === 4 * PL);
    ac.abort(new Error('client went away'));
    expect(await done).to.equal('client went away');
  });
});
