import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { SuperSeeding } from '../../server/swarm/super-seed.js';
import type { Torrent, Wire } from '../../protocol/webtorrent.js';
import { until } from '../helpers/until.js';

/** The parts of a bittorrent-protocol wire super-seeding touches; `sent` records what went out. */
class FakeWire extends EventEmitter {
  readonly type = 'tcpIncoming';
  destroyed = false;
  readonly sent: string[] = [];
  readonly offered: number[] = [];
  constructor(readonly hasFast: boolean) {
    super();
  }
  have(i: number): void {
    this.sent.push(`have ${i}`);
    this.offered.push(i);
  }
  bitfield(bf: Uint8Array): void {
    this.sent.push(`bitfield ${Buffer.from(bf).toString('hex')}`);
  }
  haveAll(): void {
    this.sent.push('have-all');
  }
  haveNone(): void {
    this.sent.push('have-none');
  }
  /** The peer announces it has piece i. */
  announce(i: number): void {
    this.emit('have', i);
  }
  close(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

const tick = () => new Promise((r) => setImmediate(r));

async function connect(torrent: EventEmitter, hasFast = true): Promise<FakeWire> {
  const w = new FakeWire(hasFast);
  torrent.emit('wire', w as unknown as Wire);
  // What webtorrent does next: our bitfield (or HAVE ALL when both sides speak the fast extension).
  if (hasFast) w.haveAll();
  else w.bitfield(new Uint8Array([0xff, 0xff]));
  await tick();
  return w;
}

function seeding(pieces: number, opts: ConstructorParameters<typeof SuperSeeding>[2] = {}) {
  const torrent = Object.assign(new EventEmitter(), { destroyed: false });
  const ss = new SuperSeeding(torrent as unknown as Torrent, { pieces, pieceLength: 256 * 1024 }, { offersPerPeer: 2, ...opts });
  return { torrent, ss };
}

describe('swarm: super-seeding', () => {
  it('advertises nothing, then offers each peer a few pieces (HAVE NONE or an empty bitfield first)', async () => {
    const { torrent } = seeding(12);
    const a = await connect(torrent, true);
    const b = await connect(torrent, false);
    expect(a.sent[0]).to.equal('have-none');
    expect(b.sent[0]).to.equal('bitfield 0000');
    expect(a.offered).to.have.length(2);
    expect(b.offered).to.have.length(2);
  });

  it('offers every piece once before any piece twice', async () => {
    const pieces = 10;
    const { torrent } = seeding(pieces, { spareCopies: 1 });
    const peers = [await connect(torrent), await connect(torrent), await connect(torrent)];
    const held = new Set<number>();
    const offers = () => peers.flatMap((p) => p.offered);
    // Each peer fetches what it is offered from the frontend; nobody shares.
    for (let round = 0; round < 20 && held.size < pieces; round++) {
      for (const p of peers) {
        const next = p.offered.find((i) => !held.has(i));
        if (next === undefined) continue;
        expect(new Set(offers()).size).to.equal(offers().length, `no second copy while piece(s) ${[...Array(pieces).keys()].filter((i) => !held.has(i))} are held by nobody`);
        held.add(next);
        p.announce(next);
      }
    }
    expect(held.size).to.equal(pieces);
    expect(new Set(offers()).size).to.be.lessThan(offers().length, 'second copies once every piece is out');
  });

  it('holds second copies back while some piece is held by nobody', async () => {
    const { torrent } = seeding(4, { spareCopies: 1 });
    const a = await connect(torrent);
    const b = await connect(torrent);
    expect(new Set([...a.offered, ...b.offered]).size).to.equal(4, 'disjoint offers');
    a.announce(a.offered[0]!);
    a.announce(a.offered[1]!);
    expect(a.offered).to.have.length(2, 'nothing nobody holds is left for a');
    b.announce(b.offered[0]!);
    expect(a.offered).to.have.length(2);
    b.announce(b.offered[1]!);
    // Every piece is held now: each peer is offered what only the other holds.
    expect(a.offered.slice(2).sort()).to.deep.equal(b.offered.slice(0, 2).sort());
    expect(b.offered.slice(2).sort()).to.deep.equal(a.offered.slice(0, 2).sort());
  });

  it('offers second copies of only the spare share while the peers pass pieces on among themselves', async () => {
    const pieces = 40;
    const { torrent } = seeding(pieces, { spareCopies: 0.1, starveMs: 60_000 });
    const peers = [await connect(torrent), await connect(torrent), await connect(torrent)];
    const has = peers.map(() => new Set<number>());
    const announce = (k: number, i: number) => {
      if (has[k]!.has(i)) return;
      has[k]!.add(i);
      peers[k]!.announce(i);
    };
    const sent = () => peers.reduce((n, p) => n + p.offered.length, 0);
    // Each peer fetches its offers from the frontend, and the others copy what it announces.
    for (let round = 0; round < 200; round++) {
      for (const [k, p] of peers.entries()) for (const i of p.offered) if (!has[k]!.has(i)) announce(k, i);
      if (round % 2 === 1) for (const k of peers.keys()) for (const j of peers.keys()) if (j !== k) for (const i of has[j]!) announce(k, i);
      await tick();
      if (has.every((h) => h.size === pieces)) break;
    }
    expect(has.map((h) => h.size)).to.deep.equal([pieces, pieces, pieces]);
    // One copy, plus the spare share (4 pieces), plus whatever was on offer when the last piece went out.
    expect(sent()).to.be.at.least(pieces);
    expect(sent()).to.be.at.most(pieces + 4 + 2 * peers.length, `offers: ${peers.map((p) => p.offered.join(',')).join(' | ')}`);
  });

  it('feeds a starving peer, such as one whose only source claims every piece and sends none', async () => {
    const pieces = 16;
    const { torrent } = seeding(pieces, { starveMs: 150 });
    const liar = await connect(torrent);
    liar.emit('bitfield', { get: () => true });
    const a = await connect(torrent);
    // Every piece is "held" (by the liar) and the spare share of 16 pieces is none: a waits until it starves.
    expect(a.offered).to.have.length(0);
    const got = new Set<number>();
    await until(
      'a to be offered every piece',
      () => {
        for (const i of a.offered) if (!got.has(i)) (got.add(i), a.announce(i));
        return got.size === pieces;
      },
      5000,
      20,
    );
    expect(new Set(a.offered).size).to.equal(a.offered.length, 'no piece offered twice to the same peer');
    torrent.emit('close');
  });

  it('a peer that leaves gives its offers back to the others', async () => {
    const { torrent } = seeding(4);
    const a = await connect(torrent);
    const b = await connect(torrent);
    a.announce(a.offered[0]!);
    a.announce(a.offered[1]!);
    const bOffers = b.offered.slice();
    b.close();
    expect(a.offered.slice(2).sort()).to.deep.equal(bOffers.sort());
  });

  it('a peer that announces nothing loses its offers after the timeout', async () => {
    const { torrent } = seeding(4, { offerTimeoutMs: 200 });
    const a = await connect(torrent);
    const stuck = await connect(torrent);
    const held = stuck.offered.slice();
    a.announce(a.offered[0]!);
    a.announce(a.offered[1]!);
    expect(a.offered).to.have.length(2);
    // The sweep runs every timeout/4 (at least 100 ms); allow a loaded machine some slack.
    await until('the sweep to offer two more pieces', () => a.offered.length >= 4, 5000, 20);
    expect([...new Set(a.offered.slice(2))].sort()).to.deep.equal(held.sort());
    torrent.emit('close');
  });

  it('ignores HAVEs for pieces that do not exist and wires that are gone', async () => {
    const { torrent, ss } = seeding(4);
    const a = await connect(torrent);
    a.announce(-1);
    a.announce(99);
    expect(a.offered).to.have.length(2, 'no new offers for pieces that do not exist');
    a.close();
    a.announce(a.offered[0]!);
    expect(ss.outstanding()).to.equal(0);
    const b = await connect(torrent);
    const c = await connect(torrent);
    expect(new Set([...b.offered, ...c.offered]).size).to.equal(4, 'the counts are intact: every piece is still held by nobody');
  });

  it('lets a peer that takes its offers fast hold more of them (up to the maximum) and keeps a slow one at the minimum', async () => {
    let t = 0;
    const { torrent, ss } = seeding(4096, { offersPerPeer: 4, maxOffersPerPeer: 64, offerAheadMs: 100, now: () => t });
    const fast = await connect(torrent);
    const slow = await connect(torrent);
    const announced = new Set<number>();
    const takeOne = (w: FakeWire) => {
      const i = w.offered.find((x) => !announced.has(x))!;
      announced.add(i);
      w.announce(i);
    };
    const outstanding = (w: FakeWire) => w.offered.filter((x) => !announced.has(x)).length;
    // The fast peer announces an offer every ms (1000 pieces/s: 100 within offerAheadMs), the slow one every 50 ms.
    let most = 0;
    for (let ms = 1; ms <= 400; ms++) {
      t = ms;
      takeOne(fast);
      if (ms % 50 === 0) takeOne(slow);
      most = Math.max(most, outstanding(fast));
      expect(outstanding(slow)).to.be.at.most(4);
    }
    expect(most).to.equal(64, 'the fast peer holds up to the maximum, no more');
    expect(ss.windows()).to.deep.equal([64, 4]);
    // It slows down: its window falls back to the minimum once a sample shows it.
    for (let ms = 401; ms <= 1000; ms += 50) {
      t = ms;
      takeOne(fast);
    }
    expect(ss.windows()).to.deep.equal([4, 4]);
    expect(new Set([...fast.offered, ...slow.offered]).size).to.equal(fast.offered.length + slow.offered.length, 'no piece offered twice');
  });

  it('offers each peer runs of neighbouring pieces among the equally rare ones, from starts of its own', async () => {
    const pieces = 64;
    const { torrent } = seeding(pieces, { offersPerPeer: 4 });
    const a = await connect(torrent);
    const b = await connect(torrent);
    // Each peer fetches its offers from the frontend; nobody shares.
    for (let round = 0; round < 6; round++) {
      for (const p of [a, b]) for (const i of p.offered.slice(-4)) p.announce(i);
      await tick();
    }
    const runs = (offered: number[]) => offered.slice(1).filter((i, k) => i !== offered[k]! + 1).length + 1;
    for (const p of [a, b]) {
      expect(p.offered.length).to.be.greaterThan(16);
      // Random single pieces would make nearly every offer a new run.
      expect(runs(p.offered), `offers ${p.offered.join(',')}`).to.be.at.most(p.offered.length / 4);
    }
    expect(new Set([...a.offered, ...b.offered]).size).to.equal(a.offered.length + b.offered.length, 'still no piece offered twice');
  });
});
