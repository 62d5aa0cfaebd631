/**
 * TFTP fuzzer: random datagrams to the listening port (well-formed and broken
 * requests, every opcode, random lengths) from a pool of loopback addresses,
 * and random packets into transfers it started (ACKs out of order, DATA,
 * ERROR, OACK, garbage), some of them driven to the end like a real client.
 */
import dgram from 'node:dgram';
import type { Rng } from './random.js';
import { type TargetReport, count, loop, newReport } from './target.js';

export interface TftpFuzzOptions {
  host: string;
  port: number;
  /** Names worth asking for (a static file, a generated config). */
  names: string[];
  rng: Rng;
  deadline: number;
  stop: () => boolean;
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 255, n & 255]);

function request(rng: Rng, names: string[]): Buffer {
  const op = rng.chance(0.8) ? 1 : rng.pick([0, 2, 3, 4, 5, 6, 7, 255, 65535]);
  const name = rng.chance(0.6) ? rng.pick(names) : rng.pick(['../etc/passwd', 'pxelinux.cfg/../../x', '//x', '__proto__', 'pxelinux.cfg/01-zz', 'pxelinux.cfg/', '', rng.text(rng.length(700))]);
  const mode = rng.chance(0.8) ? rng.pick(['octet', 'netascii', 'OCTET']) : rng.text(rng.length(20));
  const parts: Buffer[] = [u16(op), Buffer.from(name, 'latin1')];
  if (!rng.chance(0.05)) parts.push(Buffer.from([0]));
  parts.push(Buffer.from(mode, 'latin1'));
  if (!rng.chance(0.05)) parts.push(Buffer.from([0]));
  const options = rng.int(5);
  for (let i = 0; i < options; i++) {
    const key = rng.chance(0.8) ? rng.pick(['blksize', 'tsize', 'windowsize', 'timeout', 'rollover', 'BLKSIZE']) : rng.text(rng.length(12));
    parts.push(Buffer.from(`${key}\0${rng.numberish()}${rng.chance(0.95) ? '\0' : ''}`, 'latin1'));
  }
  return Buffer.concat(parts);
}

function transferPacket(rng: Rng, lastBlock: number): Buffer {
  switch (rng.int(6)) {
    case 0:
      return Buffer.concat([u16(4), u16(rng.chance(0.5) ? lastBlock : rng.int(65536))]);
    case 1:
      return Buffer.concat([u16(3), u16(rng.int(65536)), rng.bytes(rng.length(600))]);
    case 2:
      return Buffer.concat([u16(5), u16(rng.int(9)), Buffer.from(`${rng.text(rng.length(30))}\0`, 'latin1')]);
    case 3:
      return Buffer.concat([u16(6), Buffer.from(`blksize\0${rng.numberish()}\0`)]);
    case 4:
      return rng.bytes(rng.length(8));
    default:
      return Buffer.concat([u16(4), u16(lastBlock)]);
  }
}

export async function fuzzTftp(o: TftpFuzzOptions): Promise<TargetReport> {
  const report = newReport('tftp');
  const sockets: { socket: dgram.Socket; lastFrom?: dgram.RemoteInfo; lastBlock: number }[] = [];
  for (let i = 0; i < 12; i++) {
    const socket = dgram.createSocket('udp4');
    socket.on('error', () => undefined);
    const address = i < 4 ? '127.0.0.1' : `127.0.${40 + i}.${1 + o.rng.int(250)}`;
    await new Promise<void>((r) => socket.bind(0, address, r));
    const entry: { socket: dgram.Socket; lastFrom?: dgram.RemoteInfo; lastBlock: number } = { socket, lastBlock: 0 };
    socket.on('message', (msg, rinfo) => {
      const op = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
      count(report, op === 3 ? 'data' : op === 5 ? 'error' : op === 6 ? 'oack' : 'other');
      if (rinfo.port !== o.port) entry.lastFrom = rinfo;
      if (op === 3 && msg.length >= 4) {
        entry.lastBlock = msg.readUInt16BE(2);
        // Behave like a client half of the time, so transfers run and end.
        if (o.rng.chance(0.5)) socket.send(Buffer.concat([u16(4), u16(entry.lastBlock)]), rinfo.port, rinfo.address);
      } else if (op === 6 && o.rng.chance(0.5)) {
        socket.send(Buffer.concat([u16(4), u16(0)]), rinfo.port, rinfo.address);
      }
    });
    sockets.push(entry);
  }
  const send = (s: dgram.Socket, buf: Buffer, port: number, host: string) =>
    new Promise<void>((r) => {
      try {
        s.send(buf, port, host, () => r());
      } catch {
        r();
      }
    });
  try {
    await loop(4, o.deadline, o.stop, async () => {
      const entry = o.rng.pick(sockets);
      if (entry.lastFrom && o.rng.chance(0.4)) {
        const burst = 1 + o.rng.int(6);
        for (let i = 0; i < burst; i++) await send(entry.socket, transferPacket(o.rng, entry.lastBlock), entry.lastFrom.port, entry.lastFrom.address);
        report.inputs += burst;
      } else {
        await send(entry.socket, o.rng.chance(0.85) ? request(o.rng, o.names) : o.rng.bytes(o.rng.length(1200)), o.port, o.host);
        report.inputs++;
      }
      if (report.inputs % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    });
  } finally {
    for (const s of sockets) s.socket.close();
  }
  return report;
}
