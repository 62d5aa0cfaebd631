/**
 * BitTorrent wire fuzzer: TCP connections to a peer port (the frontend's
 * seeder, a node proxy), most opening with a handshake for the real
 * info-hash (so the peer's message handling is reached), then random
 * messages: every message id, payloads of wrong and right lengths, bitfields,
 * requests for pieces that do or do not exist, pieces nobody asked for,
 * extended messages with broken bencode, length prefixes up to 4 GiB, and
 * raw garbage.
 */
import net from 'node:net';
import type { Rng } from './random.js';
import { type TargetReport, count, loop, newReport } from './target.js';

export interface WireFuzzOptions {
  name: string;
  host: string;
  port: number;
  /** 20-byte info-hash of a torrent the peer has. */
  infoHash: Buffer;
  pieces: number;
  rng: Rng;
  deadline: number;
  stop: () => boolean;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

function handshake(rng: Rng, infoHash: Buffer): Buffer {
  const pstr = rng.chance(0.9) ? 'BitTorrent protocol' : rng.text(rng.length(30));
  const reserved = rng.chance(0.5) ? Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]) : rng.bytes(8);
  const hash = rng.chance(0.85) ? infoHash : rng.bytes(20);
  const peerId = Buffer.concat([Buffer.from('-FZ0001-'), rng.bytes(12)]);
  const b = Buffer.concat([Buffer.from([pstr.length & 255]), Buffer.from(pstr, 'latin1'), reserved, hash, peerId]);
  return rng.chance(0.05) ? b.subarray(0, rng.int(b.length)) : b;
}

function message(rng: Rng, pieces: number): Buffer {
  const id = rng.chance(0.9) ? rng.int(10) : rng.pick([20, 13, 14, 15, 16, 17, 255]);
  const index = () => (rng.chance(0.7) ? rng.int(pieces) : rng.int(2 ** 32));
  let payload: Buffer;
  switch (id) {
    case 0:
    case 1:
    case 2:
    case 3:
      payload = rng.chance(0.9) ? Buffer.alloc(0) : rng.bytes(rng.length(16));
      break;
    case 4:
      payload = rng.chance(0.8) ? u32(index()) : rng.bytes(rng.length(8));
      break;
    case 5:
      payload = rng.chance(0.6) ? Buffer.alloc(Math.ceil(pieces / 8), rng.chance(0.5) ? 0xff : rng.int(256)) : rng.bytes(rng.length(4096));
      break;
    case 6:
    case 8:
      payload = Buffer.concat([u32(index()), u32(rng.chance(0.7) ? 16384 * rng.int(4) : rng.int(2 ** 32)), u32(rng.chance(0.7) ? 16384 : rng.int(2 ** 32))]);
      if (rng.chance(0.1)) payload = payload.subarray(0, rng.int(12));
      break;
    case 7:
      payload = Buffer.concat([u32(index()), u32(rng.int(1 << 20)), rng.bytes(rng.length(17000))]);
      break;
    case 20:
      payload = Buffer.concat([Buffer.from([rng.int(4)]), Buffer.from(rng.pick(['d1:md11:ut_metadatai1eee', 'd1:md', 'de', 'l', 'i99999999999999999999e', rng.text(rng.length(100))]), 'latin1')]);
      break;
    default:
      payload = rng.bytes(rng.length(64));
  }
  const length = rng.chance(0.95) ? payload.length + 1 : rng.pick([0, 1, payload.length, payload.length + 100, 2 ** 20, 2 ** 31, 2 ** 32 - 1]);
  if (length === 0) return u32(0);
  return Buffer.concat([u32(length), Buffer.from([id]), payload]);
}

function session(o: WireFuzzOptions, onInput: () => void): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: o.host, port: o.port });
    let answered = false;
    let settled = false;
    const finish = (what: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(answered ? `answered-${what}` : what);
    };
    const timer = setTimeout(() => finish('timeout'), 1500);
    sock.on('data', () => (answered = true));
    sock.on('error', () => finish('reset'));
    sock.on('close', () => finish('closed'));
    sock.on('connect', async () => {
      const { rng } = o;
      if (rng.chance(0.9)) {
        sock.write(handshake(rng, o.infoHash));
        onInput();
      }
      const n = rng.int(25);
      for (let i = 0; i < n && !settled; i++) {
        sock.write(rng.chance(0.93) ? message(rng, o.pieces) : rng.bytes(rng.length(300)));
        onInput();
        if (rng.chance(0.3)) await new Promise((r) => setTimeout(r, rng.int(20)));
      }
      setTimeout(() => finish('done'), rng.int(200));
    });
  });
}

export async function fuzzWire(o: WireFuzzOptions): Promise<TargetReport> {
  const report = newReport(o.name);
  await loop(3, o.deadline, o.stop, async () => {
    const what = await session(o, () => report.inputs++);
    count(report, what);
  });
  return report;
}
