/**
 * A bound on what a peer can make this client hold by asking for blocks
 * (bittorrent-protocol 4.1, webtorrent 2.8.5; private API, as in
 * webtorrent-private.ts).
 *
 * bittorrent-protocol answers every REQUEST as soon as the store has the
 * block, whether or not the peer reads what it is sent: 17 bytes from a peer
 * that never reads make the client read and queue up to 128 KiB. A legitimate
 * webtorrent peer asks for about a second of its download rate at once, which
 * on a fast link is hundreds of MiB queued on the sender.
 *
 * Contract, per connection:
 * - a request is answered at once only while fewer than `maxUnanswered`
 *   requests are being read from the store and fewer than `backlogBytes`
 *   bytes wait to be sent (the wire's outgoing buffer and the socket's);
 * - other requests wait in order, as three numbers each, and are answered as
 *   the wire's buffer and the socket drain; a CANCEL removes a waiting request;
 * - a peer with more than `maxWaiting` requests waiting is disconnected.
 */
import type net from 'node:net';

export interface UploadLimits {
  backlogBytes: number;
  maxUnanswered: number;
  maxWaiting: number;
}

/** 4 MiB queued per peer; 64 store reads; 32768 waiting requests (512 MiB of 16 KiB blocks, a second of a fast link). */
export const UPLOAD_LIMITS: UploadLimits = { backlogBytes: 4 << 20, maxUnanswered: 64, maxWaiting: 32768 };

/** The bittorrent-protocol Wire members used here. */
export interface UploadWire {
  _onRequest(index: number, offset: number, length: number): void;
  _onCancel(index: number, offset: number, length: number): void;
  piece(index: number, offset: number, buffer: Uint8Array): void;
  on(event: 'data', listener: () => void): unknown;
  peerRequests: unknown[];
  _readableState?: { buffered?: number };
  destroyed: boolean;
  destroy(): void;
}

/** Applies the module's contract to `wire`, whose bytes go out through `conn`. */
export function boundUploads(wire: UploadWire, conn: net.Socket, limits: UploadLimits = UPLOAD_LIMITS): void {
  const answer = wire._onRequest;
  const cancel = wire._onCancel;
  const piece = wire.piece;
  let waiting: [number, number, number][] = [];
  let head = 0;
  // Waiting requests by key, and those of them the peer cancelled (skipped when their turn comes).
  const queued = new Map<string, number>();
  const cancelled = new Map<string, number>();
  const key = (i: number, o: number, l: number) => `${i}:${o}:${l}`;
  const bump = (m: Map<string, number>, k: string, by: number) => {
    const n = (m.get(k) ?? 0) + by;
    if (n > 0) m.set(k, n);
    else m.delete(k);
  };
  const room = () => wire.peerRequests.length < limits.maxUnanswered && conn.writableLength + (wire._readableState?.buffered ?? 0) < limits.backlogBytes;
  const pump = () => {
    while (head < waiting.length && !wire.destroyed && room()) {
      const [i, o, l] = waiting[head++]!;
      const k = key(i, o, l);
      bump(queued, k, -1);
      if (cancelled.has(k)) bump(cancelled, k, -1);
      else answer.call(wire, i, o, l);
    }
    if (head === waiting.length) [waiting, head] = [[], 0];
    else if (head > 4096) [waiting, head] = [waiting.slice(head), 0];
  };
  wire._onRequest = function (index, offset, length) {
    if (head === waiting.length && room()) return answer.call(wire, index, offset, length);
    if (waiting.length - head >= limits.maxWaiting) return wire.destroy();
    waiting.push([index, offset, length]);
    bump(queued, key(index, offset, length), 1);
  };
  wire._onCancel = function (index, offset, length) {
    const k = key(index, offset, length);
    if ((queued.get(k) ?? 0) > (cancelled.get(k) ?? 0)) bump(cancelled, k, 1);
    cancel.call(wire, index, offset, length);
  };
  // Room comes back as store reads are answered, as the socket drains and as the wire's own buffer empties into it.
  const later = () => void (head < waiting.length && queueMicrotask(pump));
  wire.piece = function (index, offset, buffer) {
    piece.call(wire, index, offset, buffer);
    later();
  };
  conn.on('drain', later);
  wire.on('data', later);
}
