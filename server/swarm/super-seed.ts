/**
 * Super-seeding (after BEP 16) for the frontend's seeder: the frontend's link is
 * the swarm's bottleneck, so each piece should leave it about once and travel
 * on between the nodes. The seeder tells each peer it has nothing, then offers
 * it a few pieces at a time with HAVE messages: always the pieces that are
 * rarest in the swarm (fewest peers holding them plus fewest outstanding
 * offers), so every piece is offered once before any is offered twice. When a
 * peer announces it has an offered piece (from the seeder or from anyone), it
 * is offered the next rarest piece it lacks. A peer that leaves gives its
 * outstanding offers back, so nothing is stranded.
 *
 * Peers find out that the other side is the frontend (which has every piece
 * even when it advertises few) from its peer ID (protocol/webtorrent.ts
 * FRONTEND_PEER_ID_PREFIX), and do not fall back to the web seed for a piece
 * only the frontend has.
 */
import type { BitField, Torrent, Wire } from './webtorrent.js';

interface Peer {
  wire: Wire;
  /** Offered and not yet announced by the peer. */
  offered: Set<number>;
  /** Pieces this peer announced (kept here: the wire's own bitfield may not be set yet). */
  has: Set<number>;
}

/** A wire as bittorrent-protocol builds it; the messages super-seeding replaces. */
interface ProtocolWire extends Wire {
  readonly hasFast?: boolean;
  bitfield(bitfield: BitField | Uint8Array): void;
  haveAll(): void;
  haveNone(): void;
}

export interface SuperSeedOptions {
  /** Pieces offered to one peer at once (default: about 1 MiB worth, at least 2). */
  offersPerPeer?: number;
  random?: () => number;
}

export class SuperSeeding {
  private readonly peers = new Map<Wire, Peer>();
  /** Per piece: peers that announced it. */
  private readonly holders: Uint16Array;
  /** Per piece: outstanding offers. */
  private readonly offers: Uint16Array;
  private readonly perPeer: number;
  private readonly random: () => number;

  /** Attach before the torrent has peers; `layout` is the torrent's (webtorrent knows it only once ready). */
  constructor(
    private readonly torrent: Torrent,
    layout: { pieces: number; pieceLength: number },
    opts: SuperSeedOptions = {},
  ) {
    this.holders = new Uint16Array(layout.pieces);
    this.offers = new Uint16Array(layout.pieces);
    this.perPeer = opts.offersPerPeer ?? Math.max(2, Math.ceil((1 << 20) / layout.pieceLength));
    this.random = opts.random ?? Math.random;
    torrent.on('wire', (wire: Wire) => this.attach(wire as ProtocolWire));
  }

  /** Outstanding offers of every connected peer (for stats and tests). */
  outstanding(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.offered.size;
    return n;
  }

  private attach(wire: ProtocolWire): void {
    const peer: Peer = { wire, offered: new Set(), has: new Set() };
    this.peers.set(wire, peer);
    // webtorrent sends our bitfield (or HAVE ALL) right after this event: send "nothing" instead, then the first offers.
    const hideAll = () => {
      if (wire.hasFast) ProtocolWireMethods.haveNone.call(wire);
      else ProtocolWireMethods.bitfield.call(wire, new Uint8Array(Math.ceil(this.holders.length / 8)));
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
    for (const i of peer.has) this.holders[i]!--;
    peer.offered.clear();
    // Pieces it held or was offered may now be the rarest: others may need new offers.
    for (const p of this.peers.values()) this.topUp(p);
  }

  private onHave(peer: Peer, index: number, topUp = true): void {
    if (!(index >= 0 && index < this.holders.length) || peer.has.has(index)) return;
    peer.has.add(index);
    this.holders[index]!++;
    if (peer.offered.delete(index)) this.offers[index]!--;
    if (topUp) this.topUp(peer);
  }

  /** Offers `peer` the rarest pieces it lacks until it has `perPeer` outstanding. */
  private topUp(peer: Peer): void {
    const { wire } = peer;
    if (wire.destroyed || this.torrent.destroyed || !this.peers.has(wire)) return;
    while (peer.offered.size < this.perPeer) {
      const next = this.rarestFor(peer);
      if (next < 0) return;
      peer.offered.add(next);
      this.offers[next]!++;
      wire.have(next);
    }
  }

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
    return best;
  }
}

/** The prototype methods, kept before a wire's own are replaced. */
const ProtocolWireMethods = {
  bitfield(this: ProtocolWire, bf: Uint8Array): void {
    Object.getPrototypeOf(this).bitfield.call(this, bf);
  },
  haveNone(this: ProtocolWire): void {
    Object.getPrototypeOf(this).haveNone.call(this);
  },
};
