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
  const peer = await RawPeer.open();
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
      peer.send(rrq(name, 'octet', opts.options ?? {}), port).catch(done);
    });
  } finally {
    peer.close();
  }
}
