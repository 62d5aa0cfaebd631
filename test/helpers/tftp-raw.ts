/** A hand-driven TFTP read over a raw UDP socket, for protocol misbehaviour tests. */
import type dgram from 'node:dgram';
import { RawPeer, parseError, rrq } from './tftp.js';

export interface RawGetOptions {
  /** RFC 2347 options to request (e.g. `{ blksize: '1024' }`). */
  options?: Record<string, string>;
  /** Send every ACK whose block is a multiple of this twice. */
  dupAckEvery?: number;
  /** Called for each new DATA block before it is acknowledged. */
  onData?: (block: number, tid: dgram.RemoteInfo, peer: RawPeer) => void | Promise<void>;
  timeoutMs?: number;
  /** Loopback address to send from (default 127.0.0.1). */
  localAddress?: string;
  /** The server's address (default 127.0.0.1). */
  host?: string;
}

export interface RawGetResult {
  data: Buffer;
  /** DATA packets received, duplicates included. */
  dataPackets: number;
  tid: dgram.RemoteInfo;
}

function ack(block: number): Buffer {
  return Buffer.from([0, 4, block >> 8, block & 255]);
}

/**
 * Reads `name`, acknowledging every DATA packet it receives (duplicates too,
 * like a plain RFC 1350 client). Rejects on an ERROR packet or a timeout.
 */
export async function rawGet(port: number, name: string, opts: RawGetOptions = {}): Promise<RawGetResult> {
  const peer = await RawPeer.open(opts.localAddress);
  const blockSize = Number(opts.options?.blksize ?? 512);
  const chunks: Buffer[] = [];
  let expected = 1;
  let dataPackets = 0;
  let tid: dgram.RemoteInfo | undefined;
  try {
    return await new Promise<RawGetResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw get of ${name} timed out after block ${expected - 1}`)), opts.timeoutMs ?? 15_000);
      const done = (r: RawGetResult | Error) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      peer.socket.on('message', (msg, rinfo) => {
        void (async () => {
          const op = msg.readUInt16BE(0);
          tid ??= rinfo;
          if (op === 5) return done(new Error(`TFTP error ${JSON.stringify(parseError(msg))}`));
          if (op === 6) return peer.send(ack(0), rinfo.port, rinfo.address);
          if (op !== 3) return done(new Error(`unexpected opcode ${op}`));
          dataPackets++;
          const block = msg.readUInt16BE(2);
          if (block === expected) {
            await opts.onData?.(block, rinfo, peer);
            chunks.push(msg.subarray(4));
            expected++;
          }
          await peer.send(ack(block), rinfo.port, rinfo.address);
          if (opts.dupAckEvery && block % opts.dupAckEvery === 0) await peer.send(ack(block), rinfo.port, rinfo.address);
          if (block === expected - 1 && msg.length - 4 < blockSize) done({ data: Buffer.concat(chunks), dataPackets, tid: tid! });
        })().catch((e: Error) => done(e));
      });
      peer.send(rrq(name, 'octet', opts.options ?? {}), port, opts.host).catch(done);
    });
  } finally {
    peer.close();
  }
}

export interface LossyWindowGetOptions {
  /** Window the client asks for (RFC 7440); the server may grant less. */
  windowSize: number;
  /** Fraction of DATA packets the client pretends were lost (0..1). */
  loss: number;
  /** Seed of the loss pattern, so a failure replays. */
  seed: number;
  /** Send every ACK twice, as a duplicating network would deliver it. */
  duplicateAcks: boolean;
  /** Re-acknowledge the last in-order block after this long without one (default 300 ms). */
  ackTimeoutMs?: number;
  timeoutMs?: number;
}

export interface LossyWindowGetResult {
  data: Buffer;
  /** DATA payload bytes that reached the client's socket, lost and duplicates included: the wire cost. */
  wireBytes: number;
  dataPackets: number;
  windowSize: number;
}

/**
 * An RFC 7440 receiver over a lossy, duplicating path: it drops a seeded
 * fraction of DATA packets on arrival, acknowledges at the end of each window,
 * on the first gap it sees and after a quiet spell, and (optionally) sends
 * every ACK twice. Counts every DATA byte the server put on the wire.
 */
export async function lossyWindowGet(port: number, name: string, opts: LossyWindowGetOptions): Promise<LossyWindowGetResult> {
  const peer = await RawPeer.open();
  let seed = opts.seed >>> 0;
  const random = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const chunks: Buffer[] = [];
  let expected = 1;
  let inWindow = 0;
  let windowSize = 1;
  let blockSize = 512;
  let wireBytes = 0;
  let dataPackets = 0;
  let gapAcked = false;
  let server: dgram.RemoteInfo | undefined;
  let quiet: NodeJS.Timeout | undefined;
  let finished = false;
  const sendAck = (block: number) => {
    if (!server || finished) return;
    inWindow = 0;
    const b = ack(block & 0xffff);
    peer.socket.send(b, server.port, server.address);
    if (opts.duplicateAcks) peer.socket.send(b, server.port, server.address);
  };
  const armQuiet = () => {
    clearTimeout(quiet);
    if (finished) return;
    quiet = setTimeout(() => {
      sendAck(expected - 1);
      armQuiet();
    }, opts.ackTimeoutMs ?? 300);
  };
  try {
    return await new Promise<LossyWindowGetResult>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`lossy get of ${name} timed out after block ${expected - 1} (${dataPackets} DATA packets)`)), opts.timeoutMs ?? 30_000);
      const done = (r: LossyWindowGetResult | Error) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(quiet);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      peer.socket.on('message', (msg, rinfo) => {
        if (finished || msg.length < 4) return;
        const op = msg.readUInt16BE(0);
        server ??= rinfo;
        if (op === 5) return done(new Error(`TFTP error ${JSON.stringify(parseError(msg))}`));
        if (op === 6) {
          const fields = msg.toString('latin1', 2).split('\0');
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i] === 'windowsize') windowSize = Number(fields[i + 1]);
            if (fields[i] === 'blksize') blockSize = Number(fields[i + 1]);
          }
          sendAck(0);
          armQuiet();
          return;
        }
        if (op !== 3) return done(new Error(`unexpected opcode ${op}`));
        dataPackets++;
        wireBytes += msg.length - 4;
        if (random() < opts.loss) return;
        const block = msg.readUInt16BE(2);
        if (block !== (expected & 0xffff)) {
          if (!gapAcked) sendAck(expected - 1);
          gapAcked = true;
          return;
        }
        chunks.push(msg.subarray(4));
        expected++;
        gapAcked = false;
        armQuiet();
        const last = msg.length - 4 < blockSize;
        if (++inWindow >= windowSize || last) sendAck(block);
        if (last) done({ data: Buffer.concat(chunks), wireBytes, dataPackets, windowSize });
      });
      peer.send(rrq(name, 'octet', { windowsize: String(opts.windowSize) }), port).catch(done);
    });
  } finally {
    peer.close();
  }
}
