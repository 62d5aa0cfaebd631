/**
 * The floor of a swarm install on this machine: the work a node cannot avoid
 * for one image, each step timed in this process on its own (CPU seconds of
 * the whole process, thread pool and kernel included):
 * - receive: the stored bytes over one loopback TCP connection, read in
 *   64 KiB socket reads (the kernel's copy and Node's read path; the sender,
 *   a child process, is not counted), the way an HTTP client reads;
 * - receive into pieces: the same, read into one reused buffer and copied
 *   into a new buffer per piece, the way a swarm node's peer connections
 *   read (protocol/webtorrent-private-receive.ts);
 * - piece SHA-1: every piece of the stored file (the piece length the
 *   frontend's torrent of it has), as BitTorrent checks it;
 * - piece writes: the stored file written in pieces to a scratch file (what a
 *   node keeps to seed from);
 * - inflate: every deflated chunk, on the thread pool, three at a time, as the
 *   installer does;
 * - chunk SHA-256: every raw chunk, against its index entry;
 * - target writes: every stored chunk's raw bytes at its offset, through the
 *   installer's target writer (direct I/O where the file system takes it;
 *   zero chunks are holes, as the installer leaves them);
 * - receive (UDP): the stored bytes as multicast DATA datagrams (blocks of
 *   `blockSize` bytes, 1400 by default, behind the 40-byte header), sent by
 *   a child process to a loopback UDP socket as fast as it can and read
 *   here, each block copied into a chunk buffer; the CPU per datagram read,
 *   times the datagrams the image needs (one per block and chunk; what the
 *   sender's socket or this one dropped is not counted).
 * The swarm floor is the sum of every step but "receive (loopback TCP)",
 * "receive (UDP)" and "chunk SHA-256 alone" (part of the inflate step, timed
 * only to show its share;
 * the UDP receive runs second, before the steps that leave the thread pool,
 * the collector and the page cache busy); the HTTP floor has the plain
 * receive and leaves out the piece SHA-1 and the piece writes; the multicast floor is the HTTP floor with the UDP receive in place
 * of the TCP one. Anything a real install spends beyond its floor is the cost
 * of its protocol stack, its scheduling and its allocations.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DATA_HEADER_SIZE, DEFAULT_BLOCK_SIZE, blockCountFor } from '../../protocol/frisbee.js';
import { decodeChunkAsync, parseHeaderAndIndex } from '../../protocol/image-format.js';
import { openTarget } from '../../protocol/target-file.js';
import { readInto } from '../../protocol/webtorrent-private-receive.js';
import { copyIntoPieces } from './pieces.js';
import { pieceLengthFor } from '../../server/images/torrent.js';

export interface FloorStep {
  step: string;
  cpuSeconds: number;
  cpuSecondsPerGiBRaw: number;
}

export interface FloorResult {
  rawSize: number;
  storedSize: number;
  steps: FloorStep[];
  /** Swarm floor: receive into pieces, piece SHA-1, piece writes, inflate + chunk SHA-256, target writes. */
  totalCpuSecondsPerGiBRaw: number;
  /** HTTP floor: receive, inflate + chunk SHA-256, target writes. */
  httpCpuSecondsPerGiBRaw: number;
  /** Multicast floor: receive (UDP), inflate + chunk SHA-256, target writes. */
  multicastCpuSecondsPerGiBRaw: number;
  /** Multicast payload bytes per datagram the UDP step used. */
  blockSize: number;
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Bytes of `file` sent by a child process to a loopback socket and read here;
 * resolves with the bytes read. With `pieceLength`, the socket reads into one
 * reused buffer and every byte is copied into a new buffer per piece.
 */
async function receiveOverLoopback(file: string, pieceLength?: number): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const send = `const s=require('net').connect(${port},'127.0.0.1',()=>require('fs').createReadStream(process.argv[1],{highWaterMark:1<<20}).pipe(s))`;
  const sender = spawn(process.execPath, ['-e', send, file], { stdio: 'ignore' });
  try {
    return await new Promise<number>((resolve, reject) => {
      let n = 0;
      sender.once('exit', (code) => {
        if (code !== 0) reject(new Error(`the sender exited ${code} after ${n} bytes`));
      });
      server.once('connection', (sock) => {
        if (pieceLength) {
          const keep = copyIntoPieces(pieceLength);
          const copyIn = (d: Uint8Array) => {
            keep(d);
            n += d.length;
          };
          if (!readInto(sock, copyIn)) return reject(new Error('this Node.js cannot read a socket into a buffer of its own'));
        } else sock.on('data', (d: Buffer) => (n += d.length));
        sock.on('end', () => resolve(n));
        sock.on('error', reject);
      });
    });
  } finally {
    sender.kill();
    server.close();
  }
}

/** Length of the datagrams that end a UDP run (the sender sends several; a DATA datagram is longer). */
const UDP_END = 1;

/**
 * `count` DATA-sized datagrams sent by a child process to a loopback UDP
 * socket here; resolves with the datagrams read and this process's CPU
 * seconds while reading them. Each payload is copied into a 1 MiB buffer.
 */
async function receiveDatagrams(count: number, blockSize: number): Promise<{ received: number; cpuSeconds: number }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  try {
    sock.setRecvBufferSize(4 << 20);
  } catch {
    // capped by the kernel
  }
  const port = sock.address().port;
  const size = DATA_HEADER_SIZE + blockSize;
  const send =
    `const s=require('dgram').createSocket('udp4');const b=Buffer.alloc(${size},7);let n=${count};` +
    `const end=(k)=>k>0?s.send(Buffer.alloc(${UDP_END}),${port},'127.0.0.1',()=>setTimeout(()=>end(k-1),20)):s.close();` +
    `const go=()=>{let k=0;while(n>0&&k++<64){n--;s.send(b,${port},'127.0.0.1')}n>0?setImmediate(go):setTimeout(()=>end(20),50)};go()`;
  const perChunk = Math.floor((1 << 20) / blockSize);
  const chunk = Buffer.allocUnsafe(1 << 20);
  let received = 0;
  let c0 = 0;
  const sender = spawn(process.execPath, ['-e', send], { stdio: 'ignore' });
  try {
    return await new Promise((resolve, reject) => {
      sender.once('exit', (code) => {
        if (code !== 0) reject(new Error(`the UDP sender exited ${code} after ${received} datagrams`));
        else setTimeout(() => reject(new Error(`the UDP sender ended, ${received} datagrams read and no end mark`)), 2000).unref();
      });
      sock.on('message', (m: Buffer) => {
        if (m.length === UDP_END) return resolve({ received, cpuSeconds: received > 0 ? cpuNow() - c0 : 0 });
        if (received++ === 0) c0 = cpuNow();
        m.copy(chunk, (received % perChunk) * blockSize, DATA_HEADER_SIZE);
      });
    });
  } finally {
    sender.kill();
    sock.close();
  }
}

/**
 * Measures the floor steps for the image file `imageFile` (a `.ksimg`), using
 * `work` for scratch files; `blockSize` is the multicast payload per datagram
 * (default 1400).
 */
export async function measureFloor(imageFile: string, work: string, o: { blockSize?: number } = {}): Promise<FloorResult> {
  const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
  const file = fs.readFileSync(imageFile);
  const { header, entries } = parseHeaderAndIndex(file);
  const piece = pieceLengthFor(file.length);
  const perGiB = (s: number) => Math.round(((s * 2 ** 30) / header.rawSize) * 100) / 100;
  const steps: FloorStep[] = [];
  const step = async (name: string, fn: () => Promise<void> | void) => {
    const c0 = cpuNow();
    await fn();
    const s = cpuNow() - c0;
    steps.push({ step: name, cpuSeconds: Math.round(s * 100) / 100, cpuSecondsPerGiBRaw: perGiB(s) });
  };
  await step('receive (loopback TCP)', async () => {
    const n = await receiveOverLoopback(imageFile);
    if (n !== file.length) throw new Error(`received ${n} of ${file.length} bytes`);
  });
  await step('receive into pieces', async () => {
    const n = await receiveOverLoopback(imageFile, piece);
    if (n !== file.length) throw new Error(`received ${n} of ${file.length} bytes`);
  });
  const datagrams = entries.reduce((n, e) => n + blockCountFor(e.storedLength, blockSize), 0);
  const udp = await receiveDatagrams(datagrams, blockSize);
  if (udp.received === 0) throw new Error('no UDP datagram arrived over loopback');
  const udpSeconds = (udp.cpuSeconds * datagrams) / udp.received;
  steps.push({ step: 'receive (UDP)', cpuSeconds: Math.round(udpSeconds * 100) / 100, cpuSecondsPerGiBRaw: perGiB(udpSeconds) });
  await step('piece SHA-1', () => {
    for (let at = 0; at < file.length; at += piece)
      crypto
        .createHash('sha1')
        .update(file.subarray(at, at + piece))
        .digest();
  });
  const scratch = await fs.promises.open(path.join(work, 'floor-scratch'), 'w+');
  await step('piece writes', async () => {
    for (let at = 0; at < file.length; at += piece) await scratch.write(file, at, Math.min(piece, file.length - at), at);
  });
  await scratch.close();
  // Each chunk is decoded, used and dropped, as in an install: keeping every raw
  // chunk alive would time the faulting-in of the whole raw image as well.
  const decode = (i: number) => decodeChunkAsync(entries[i]!, file.subarray(entries[i]!.offset, entries[i]!.offset + entries[i]!.storedLength));
  await step('inflate + chunk SHA-256', async () => {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < entries.length; i = next++) await decode(i);
    };
    await Promise.all([worker(), worker(), worker()]);
  });
  /** CPU seconds of `timed(raw)` summed over every chunk (the decode before each is not counted). */
  const perChunk = async (name: string, timed: (raw: Buffer, i: number) => Promise<void> | void) => {
    let s = 0;
    for (let i = 0; i < entries.length; i++) {
      const raw = await decode(i);
      const c0 = cpuNow();
      await timed(raw, i);
      s += cpuNow() - c0;
    }
    steps.push({ step: name, cpuSeconds: Math.round(s * 100) / 100, cpuSecondsPerGiBRaw: perGiB(s) });
  };
  await perChunk('chunk SHA-256 alone', (raw) => void crypto.createHash('sha256').update(raw).digest());
  const target = await openTarget(path.join(work, 'floor-target'), header.rawSize);
  await perChunk('target writes', (raw, i) => target.write(raw, entries[i]!.chunkNumber * header.chunkSize));
  await target.sync();
  await target.close();
  fs.rmSync(path.join(work, 'floor-scratch'), { force: true });
  fs.rmSync(path.join(work, 'floor-target'), { force: true });
  const sum = (leftOut: string[]) => Math.round(steps.filter((s) => !leftOut.includes(s.step)).reduce((a, s) => a + s.cpuSecondsPerGiBRaw, 0) * 100) / 100;
  return {
    rawSize: header.rawSize,
    storedSize: file.length,
    steps,
    totalCpuSecondsPerGiBRaw: sum(['chunk SHA-256 alone', 'receive (UDP)', 'receive (loopback TCP)']),
    httpCpuSecondsPerGiBRaw: sum(['chunk SHA-256 alone', 'piece SHA-1', 'piece writes', 'receive (UDP)', 'receive into pieces']),
    multicastCpuSecondsPerGiBRaw: sum(['chunk SHA-256 alone', 'piece SHA-1', 'piece writes', 'receive (loopback TCP)', 'receive into pieces']),
    blockSize,
  };
}
