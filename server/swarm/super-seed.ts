/**
 * Super-seeding (after BEP 16) for the frontend's seeder: the frontend's link is
 * the swarm's bottleneck, so each piece should leave it about once and travel
 * on between the nodes. The seeder tells each peer it has nothing, then offers
 * it a few pieces at a time with HAVE messages: always the pieces that are
 * rarest in the swarm (fewest peers holding them plus fewest outstanding
 * offers; among equally rare pieces, the one after the piece last offered to
 * that peer, else one at random, so each peer gets runs of neighbouring pieces
 * from a start of its own and can assemble whole image chunks early). Until
 * every piece is held by some peer, only pieces nobody holds or
 * has been offered are offered (the first copy of the image leaves the
 * frontend before any piece leaves it twice). After that the nodes pass the
 * pieces on among themselves: the frontend offers second copies for only a
 * small share of the image (`spareCopies`), and beyond that only to a peer
 * that is starving: one that announced no piece it got from anyone but the
 * frontend for `starveMs` (its peers are slow, gone, or lie about what they
 * hold). A starving peer is offered the rarest pieces it lacks until it
 * announces a piece from someone else again. When a peer announces it has an
 * offered piece (from the seeder or from anyone), it is offered the next one.
 * How many offers a peer holds at once follows how fast it takes them: at
 * least `offersPerPeer`, and as many as it announces in `offerAheadMs`, up to
 * `maxOffersPerPeer` (a fast node on a fast link is not held to a window of
 * a few pieces per round trip; a slow one keeps the small window, so the
 * pieces stay spread over the peers).
 * A peer that leaves gives its outstanding offers back, so nothing is
 * stranded.
 *
 * Peers find out that the other side is the frontend (which has every piece
 * even when it advertises few) from its peer ID (protocol/webtorrent.ts
 * FRONTEND_PEER_ID_PREFIX), and do not fall back to the web seed for a piece
 * only the frontend has.
 */
import type { BitField, Torrent, Wire } from '../../protocol/webtorrent.js';

interface Peer {
  wire: Wire;
  /** Offered and not yet announced by the peer. */
  offered: Set<number>;
  /** When the peer last announced a piece (or connected), ms. */
  lastHave: number;
  /** When the peer last announced a piece it was not offered by the frontend (or connected), ms. */
  lastFromOthers: number;
  /** Pieces this peer announced (kept here: the wire's own bitfield may not be set yet). */
  has: Set<number>;
  /** The piece after the last one offered: preferred among the rarest, so a peer gets runs of neighbouring pieces. */
  next: number;
  /** Offers it may hold at once (see offerAheadMs). */
  window: number;
  /** Start (ms) of the current rate sample, and the offered pieces it announced since. */
  rateFrom: number;
  rateCount: number;
}

/** A wire as bittorrent-protocol builds it; the messages super-seeding replaces. */
interface ProtocolWire extends Wire {
  readonly hasFast?: boolean;
  bitfield(bitfield: BitField | Uint8Array): void;
  haveAll(): void;
  haveNone(): void;
}

export interface SuperSeedOptions {
  /** Pieces offered to one peer at once, at least (default: about 1 MiB worth, at least 2). */
  offersPerPeer?: number;
  /**
   * A peer that announces offered pieces fast holds as many offers as it
   * announces in this many ms (measured over samples of at least this long);
   * default 100.
   */
  offerAheadMs?: number;
  /** Most offers one peer holds at once (default: about 16 MiB worth, at least offersPerPeer). */
  maxOffersPerPeer?: number;
  /**
   * A peer that announces no piece for this many ms loses its offers (they stop
   * counting; it may still fetch them), so a stuck or hostile peer cannot hold
   * pieces back from the others (default 20 s).
   */
  offerTimeoutMs?: number;
  /**
   * Once every piece is held by some peer, the frontend offers second copies of
   * at most this share of the image's pieces (to any peer) until every peer has
   * left (default 0.05).
   */
  spareCopies?: number;
  /**
   * A peer that announced no piece from anyone but the frontend for this many
   * ms is starving: the frontend offers it pieces whatever `spareCopies` says
   * (default 2 s).
   */
  starveMs?: number;
  random?: () => number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

export class SuperSeeding {
  private readonly peers = new Map<Wire, Peer>();
  /** Per piece: peers that announced it. */
  private readonly holders: Uint16Array;
  /** Per piece: outstanding offers. */
  private readonly offers: Uint16Array;
  private readonly perPeer: number;
  private readonly maxPerPeer: number;
  private readonly aheadMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  /** Pieces no connected peer holds. */
  private unheld: number;
  private readonly offerTimeoutMs: number;
  private readonly starveMs: number;
  /** Second-copy offers still allowed to peers that are not starving. */
  private spareOffers: number;
  private readonly spareOffersMax: number;
  private sweeper: NodeJS.Timeout | undefined;

  /** Attach before the torrent has peers; `layout` is the torrent's (webtorrent knows it only once ready). */
  constructor(
    private readonly torrent: Torrent,
    layout: { pieces: number; pieceLength: number },
    opts: SuperSeedOptions = {},
  ) {
    this.holders = new Uint16Array(layout.pieces);
    this.offers = new Uint16Array(layout.pieces);
    this.perPeer = opts.offersPerPeer ?? Math.max(2, Math.ceil((1 << 20) / layout.pieceLength));
    this.maxPerPeer = Math.max(this.perPeer, opts.maxOffersPerPeer ?? Math.ceil((16 << 20) / layout.pieceLength));
    this.aheadMs = opts.offerAheadMs ?? 100;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.unheld = layout.pieces;
    this.offerTimeoutMs = opts.offerTimeoutMs ?? 20_000;
    this.starveMs = opts.starveMs ?? 2_000;
    this.spareOffersMax = Math.floor((opts.spareCopies ?? 0.05) * layout.pieces);
    this.spareOffers = this.spareOffersMax;
    torrent.on('wire', (wire: Wire) => this.attach(wire as ProtocolWire));
    torrent.once('close', () => clearInterval(this.sweeper));
  }

  /** Outstanding offers of every connected peer (for stats and tests). */
  outstanding(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.offered.size;
    return n;
  }

  private attach(wire: ProtocolWire): void {
    const now = this.now();
    const peer: Peer = { wire, offered: new Set(), has: new Set(), lastHave: now, lastFromOthers: now, next: -1, window: this.perPeer, rateFrom: now, rateCount: 0 };
    this.peers.set(wire, peer);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(this.offerTimeoutMs / 4, this.starveMs / 2)));
      this.sweeper.unref();
    }
    // webtorrent sends our bitfield (or HAVE ALL) right after this event: send "nothing" instead, then the first offers.
    const proto = Object.getPrototypeOf(wire) as ProtocolWire;
    const hideAll = () => {
      if (wire.hasFast) proto.haveNone.call(wire);
      else proto.bitfield.call(wire, new Uint8Array(Math.ceil(this.holders.length / 8)));
      queueMicrotask(() => this.topUp(peer));
    };
    wire.bitfield = hideAll;
    wire.haveAll = hideAll;
    wire.on('have', (index: number) => this.onHave(peer, index));
    wire.on('bitfield', (bf: BitField) => {
      for (let i = 0; i < this.holders.length; i++) if (bf.get(i)) this.onHave(peer, i, false);
      this.topUp(peer);
    });
    wire.on('have-all', () => {
      for (let i = 0; i < this.holders.length; i++) this.onHave(peer, i, false);
    });
    wire.once('close', () => this.detach(peer));
  }

  private detach(peer: Peer): void {
    if (!this.peers.delete(peer.wire)) return;
    for (const i of peer.offered) this.offers[i]!--;
    for (const i of peer.has) if (--this.holders[i]! === 0) this.unheld++;
    peer.offered.clear();
    if (this.peers.size === 0) this.spareOffers = this.spareOffersMax;
    // Pieces it held or was offered may now be the rarest: others may need new offers.
    for (const p of this.peers.values()) this.topUp(p);
  }

  private onHave(peer: Peer, index: number, topUp = true): void {
    if (!this.peers.has(peer.wire) || !(index >= 0 && index < this.holders.length) || peer.has.has(index)) return;
    peer.has.add(index);
    peer.lastHave = this.now();
    if (!peer.offered.has(index)) peer.lastFromOthers = peer.lastHave;
    else this.measure(peer);
    if (this.holders[index]!++ === 0 && --this.unheld === 0) {
      // The first copy is out: the frontend's spare upload may now go to second copies.
      for (const p of this.peers.values()) if (p !== peer) this.topUp(p);
    }
    if (peer.offered.delete(index)) this.offers[index]!--;
    if (topUp) this.topUp(peer);
  }

  /** Counts one offered piece `peer` announced; once a sample spans offerAheadMs, sets its window from the rate. */
  private measure(peer: Peer): void {
    peer.rateCount++;
    const elapsed = peer.lastHave - peer.rateFrom;
    if (elapsed < this.aheadMs) return;
    const ahead = Math.ceil((peer.rateCount * this.aheadMs) / elapsed);
    peer.window = Math.min(this.maxPerPeer, Math.max(this.perPeer, ahead));
    peer.rateFrom = peer.lastHave;
    peer.rateCount = 0;
  }

  /** How many offers each connected peer may hold at once (for stats and tests). */
  windows(): number[] {
    return [...this.peers.values()].map((p) => p.window);
  }

  /** Offers `peer` the rarest pieces it lacks until it has its window outstanding. */
  private topUp(peer: Peer): void {
    const { wire } = peer;
    if (wire.destroyed || this.torrent.destroyed || !this.peers.has(wire)) return;
    // Every piece is held by a peer: a second copy comes out of the spare share, unless the peer is starving.
    const spare = this.unheld === 0 && !this.isStarving(peer, this.now());
    while (peer.offered.size < peer.window) {
      if (spare && this.spareOffers <= 0) return;
      const next = this.rarestFor(peer);
      if (next < 0) return;
      if (spare) this.spareOffers--;
      peer.offered.add(next);
      peer.next = next + 1;
      this.offers[next]!++;
      wire.have(next);
    }
  }

  /**
   * Takes the offers back from peers that announced nothing for the timeout and
   * gives the others new ones; tops up the peers that started starving.
   */
  private sweep(): void {
    const now = this.now();
    const before = now - this.offerTimeoutMs;
    let expired = false;
    for (const p of this.peers.values()) {
      if (p.lastHave > before || p.offered.size === 0) continue;
      for (const i of p.offered) this.offers[i]!--;
      p.offered.clear();
      p.lastHave = now;
      expired = true;
    }
    for (const p of this.peers.values()) if (expired || this.isStarving(p, now)) this.topUp(p);
  }

  /**
   * Every piece is held by some peer, and `peer` lacks some but announced none
   * it was not offered by the frontend for `starveMs` (a peer that holds every
   * piece never announces again: it is not starving).
   */
  private isStarving(peer: Peer, now: number): boolean {
    return this.unheld === 0 && peer.has.size < this.holders.length && now - peer.lastFromOthers >= this.starveMs;
  }

  /** The rarest piece `peer` lacks and was not offered; -1 when there is none, or none worth sending yet. */
  private rarestFor(peer: Peer): number {
    let best = -1;
    let bestScore = Infinity;
    let ties = 0;
    for (let i = 0; i < this.holders.length; i++) {
      if (peer.has.has(i) || peer.offered.has(i)) continue;
      const score = this.holders[i]! + this.offers[i]!;
      if (score < bestScore) {
        best = i;
        bestScore = score;
        ties = 1;
      } else if (score === bestScore && this.random() * ++ties < 1) {
        best = i;
      }
    }
    if (bestScore > 0 && this.unheld > 0) return -1;
    const n = peer.next;
    if (best >= 0 && n >= 0 && n < this.holders.length && !peer.has.has(n) && !peer.offered.has(n) && this.holders[n]! + this.offers[n]! === bestScore) return n;
    return best;
  }
}
