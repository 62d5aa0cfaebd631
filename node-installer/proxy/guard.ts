/**
 * Finds and bans peers that send bad piece data. webtorrent 2.8.5 drops a piece
 * that fails its hash and fetches it again, but keeps the peer that sent it. The
 * guard remembers which peer sent which block of every piece in flight:
 * - a failed piece whose blocks all came from one peer bans that peer at once;
 * - a failed piece with several senders is kept aside, and when the piece later
 *   verifies, every sender whose block differs from the verified bytes is banned.
 * Banned peers (by peer id and address) are disconnected and refused from then on.
 */
import type { Logger } from 'pino';
import type { Torrent, Wire } from '../../protocol/webtorrent.js';

interface Block {
  peer: string;
  addr?: string;
  offset: number;
  data: Uint8Array;
}

const MAX_SUSPECT_PIECES = 64;

export class PeerGuard {
  /** Banned peer ids (hex). */
  readonly banned = new Set<string>();
  private readonly bannedAddrs = new Set<string>();
  private readonly pending = new Map<number, Block[]>();
  private readonly suspects = new Map<number, Block[]>();
  hashFailures = 0;

  constructor(
    private readonly torrent: Torrent,
    private readonly log: Logger,
    private readonly onBan: (peer: string) => void = () => undefined,
  ) {}

  /** True when the wire belongs to a banned peer (the caller drops it). */
  isBanned(wire: Wire): boolean {
    return (!!wire.peerId && this.banned.has(wire.peerId)) || this.bannedAddrs.has(addrOf(wire) ?? '');
  }

  /** Starts recording the blocks `wire` sends. */
  watch(wire: Wire): void {
    const peer = wire.peerId ?? addrOf(wire) ?? 'unknown';
    const addr = wire.type === 'tcpOutgoing' ? addrOf(wire) : undefined;
    wire.on('piece', (index: number, offset: number, data: Uint8Array) => {
      if (this.torrent.bitfield?.get(index)) return;
      let blocks = this.pending.get(index);
      if (!blocks) this.pending.set(index, (blocks = []));
      blocks.push({ peer, addr, offset, data });
    });
  }

  /** A piece failed its hash: ban its only sender, or keep its blocks until a good copy arrives. */
  onFailed(index: number): void {
    this.hashFailures++;
    const blocks = this.pending.get(index) ?? [];
    this.pending.delete(index);
    const senders = new Set(blocks.map((b) => b.peer));
    if (senders.size === 1) {
      const b = blocks[0]!;
      this.ban(b.peer, b.addr, `sent piece ${index}, which failed its hash`);
      return;
    }
    if (senders.size === 0) return;
    const kept = this.suspects.get(index) ?? [];
    this.suspects.set(index, kept.concat(blocks));
    while (this.suspects.size > MAX_SUSPECT_PIECES) this.suspects.delete(this.suspects.keys().next().value!);
  }

  /** A piece verified: compare what each earlier sender of a failed copy sent against the good bytes. */
  onVerified(index: number): void {
    this.pending.delete(index);
    const blocks = this.suspects.get(index);
    if (!blocks) return;
    this.suspects.delete(index);
    const store = this.torrent.store;
    if (!store) return;
    store.get(index, {}, (err, good) => {
      if (err || !good) return;
      for (const b of blocks) {
        const want = good.subarray(b.offset, b.offset + b.data.length);
        if (!sameBytes(want, b.data)) {
          this.ban(b.peer, b.addr, `sent a bad block of piece ${index}`);
        }
      }
    });
  }

  private ban(peer: string, addr: string | undefined, reason: string): void {
    if (addr) this.bannedAddrs.add(addr);
    if (this.banned.has(peer)) return;
    this.banned.add(peer);
    this.log.warn({ peer, addr, reason }, 'banned peer');
    this.onBan(peer);
    for (const wire of [...this.torrent.wires]) {
      if (wire.peerId === peer || (addr && addrOf(wire) === addr)) wire.destroy();
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function addrOf(wire: Wire): string | undefined {
  return wire.remoteAddress ? `${wire.remoteAddress}:${wire.remotePort}` : undefined;
}
