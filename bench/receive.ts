/**
 * What receiving costs a node, in isolation: the CPU seconds of this process
 * only, while a child process sends over loopback TCP.
 *
 * - `socket`: M MiB read from one socket, four ways: Node's default reads (a
 *   new buffer per read), reads into one reused buffer (the node's receive
 *   path, `readInto`), reused reads copied into a new buffer per 256 KiB piece
 *   (what a node does with them), and default reads copied again into new
 *   buffers (fresh memory twice);
 * - `torrent`: a webtorrent client fetching M MiB of random data from a
 *   seeding client in the child, with the node's settings
 *   (`createClient({ unthrottled: true })`: the receive path) or the
 *   library's own pipes (`unthrottled: false`, as the frontend's seeder);
 * - `http`: M MiB as the body of one HTTP GET from a Node.js server in the
 *   child, taken in 1 MiB reads into one buffer: through undici (a new buffer
 *   per socket read, then a stream) or the installer's image body reader
 *   (node-installer/fetch/http-body.ts: one reused read buffer).
 *
 *   npm run bench:receive -- [--mb M] [--runs R] [--ways all|socket|torrent|http] [--json]
 *
 * Runs alternate between the ways; the medians are printed.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { Command } from 'commander';
import { Agent, request } from 'undici';
import { openImageBody } from '../node-installer/fetch/http-body.js';
import { readInto } from '../protocol/webtorrent-private-receive.js';
import { createClient } from '../protocol/webtorrent-private.js';
import { destroyClient, type Torrent, type TorrentOptions } from '../protocol/webtorrent.js';
import { copyIntoPieces } from './lib/pieces.js';

const SELF = fileURLToPath(import.meta.url);
const PIECE = 256 * 1024;
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Starts this file as a sender child (`role`), resolves with the first line it prints and the child. */
async function sender(role: 'socket' | 'torrent' | 'http', mb: number): Promise<{ line: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--child', role, '--mb', String(mb)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let s = '';
    child.stdout!.on('data', (d: Buffer) => {
      s += d.toString();
      if (s.includes('\n')) resolve(s.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`sender exited ${code}`)));
  });
  return { line, stop: () => child.kill() };
}

type SocketWay = 'default' | 'reused' | 'reused-into-pieces' | 'default-copied';

/** CPU seconds this process spends reading `mb` MiB from the sender child, the given way. */
async function readSocket(way: SocketWay, mb: number): Promise<number> {
  const { line, stop } = await sender('socket', mb);
  try {
    const sock = net.connect(Number(line), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const c0 = cpuNow();
    let n = 0;
    const intoPieces = copyIntoPieces(PIECE);
    await new Promise<void>((resolve, reject) => {
      sock.once('end', resolve);
      sock.once('error', reject);
      if (way === 'default') sock.on('data', (d: Buffer) => (n += d.length));
      else if (way === 'default-copied') sock.on('data', (d: Buffer) => (n += Buffer.from(d).length));
      else if (!readInto(sock, (d) => ((n += d.length), way === 'reused-into-pieces' && intoPieces(d)))) reject(new Error('this Node.js cannot read into a reused buffer'));
    });
    const s = cpuNow() - c0;
    sock.destroy();
    if (n !== mb << 20) throw new Error(`read ${n} of ${mb << 20} bytes`);
    return s;
  } finally {
    stop();
  }
}

type HttpWay = 'undici' | 'image body';

/** CPU seconds this process spends taking an `mb` MiB HTTP body from the sender child in 1 MiB reads, the given way. */
async function readHttp(way: HttpWay, mb: number): Promise<number> {
  const { line, stop } = await sender('http', mb);
  const base = `http://127.0.0.1:${line}`;
  const into = Buffer.allocUnsafe(1 << 20);
  let n = 0;
  try {
    const c0 = cpuNow();
    if (way === 'image body') {
      const body = await openImageBody({ base, name: 'img' });
      if (!body) throw new Error('the image body reader refused the response');
      for (let b = await body.readExact(into.length, into); b.length > 0; b = await body.readExact(into.length, into)) n += b.length;
      await body.close();
    } else {
      const dispatcher = new Agent();
      const res = await request(`${base}/install/images/img`, { dispatcher });
      let at = 0;
      for await (const c of res.body as AsyncIterable<Buffer>) {
        for (let o = 0; o < c.length;) {
          const k = c.copy(into, at, o);
          o += k;
          at = (at + k) % into.length;
        }
        n += c.length;
      }
      await dispatcher.close();
    }
    const s = cpuNow() - c0;
    if (n !== mb << 20) throw new Error(`read ${n} of ${mb << 20} bytes`);
    return s;
  } finally {
    stop();
  }
}

/** CPU seconds this process spends fetching `mb` MiB as a torrent from the sender child. */
async function fetchTorrent(unthrottled: boolean, mb: number): Promise<number> {
  const { line, stop } = await sender('torrent', mb);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-bench-receive-'));
  const client = await createClient({ webSeeds: false, host: '127.0.0.1', unthrottled });
  try {
    const { port, torrent } = JSON.parse(line) as { port: number; torrent: string };
    const c0 = cpuNow();
    const t = client.add(Buffer.from(torrent, 'base64'), { path: dir } as TorrentOptions);
    const addPeer = () => (t as unknown as { addPeer(a: string): void }).addPeer(`127.0.0.1:${port}`);
    if (t.infoHash) addPeer();
    else t.once('infoHash', addPeer);
    await new Promise<void>((r) => (t.done ? r() : t.once('done', () => r())));
    return cpuNow() - c0;
  } finally {
    stop();
    await destroyClient(client);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The sender side, in the child: prints where to connect, then serves. */
async function child(role: string, mb: number): Promise<void> {
  const data = crypto.randomBytes(mb << 20);
  if (role === 'http') {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
    server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
    return;
  }
  if (role === 'socket') {
    const server = net.createServer((s) => {
      let at = 0;
      const more = () => {
        while (at < data.length) {
          const chunk = data.subarray(at, at + (1 << 20));
          at += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', more);
        }
        s.end();
      };
      more();
    });
    server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
    return;
  }
  const seedClient = await createClient({ webSeeds: false, host: '127.0.0.1' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-bench-receive-seed-'));
  process.once('SIGTERM', () => void destroyClient(seedClient).finally(() => (fs.rmSync(dir, { recursive: true, force: true }), process.exit(0))));
  type Seeding = { seed(input: Buffer, opts: object, cb: (t: Torrent & { torrentFile: Uint8Array }) => void): void };
  (seedClient as unknown as Seeding).seed(data, { name: 'img', announce: [], path: dir, pieceLength: PIECE }, (t) => {
    process.stdout.write(`${JSON.stringify({ port: seedClient.address()!.port, torrent: Buffer.from(t.torrentFile).toString('base64') })}\n`);
  });
}

interface Flags {
  mb: string;
  runs: string;
  json?: boolean;
  child?: string;
  ways: string;
}

async function run(f: Flags): Promise<void> {
  const mb = Number(f.mb);
  const runs = Number(f.runs);
  if (!(Number.isInteger(mb) && mb >= 1 && mb <= 4096) || !(Number.isInteger(runs) && runs >= 1 && runs <= 50)) throw new Error('--mb 1-4096 and --runs 1-50');
  if (f.child) return child(f.child, mb);
  if (!['all', 'socket', 'torrent', 'http'].includes(f.ways)) throw new Error('--ways all, socket, torrent or http');
  const ways: SocketWay[] = ['default', 'reused', 'reused-into-pieces', 'default-copied'];
  const socket = new Map<string, number[]>(ways.map((w) => [w, []]));
  const httpWays: HttpWay[] = ['undici', 'image body'];
  const httpBody = new Map<string, number[]>(httpWays.map((w) => [w, []]));
  const torrent = new Map<string, number[]>([
    ['receive path (unthrottled)', []],
    ["library's pipes", []],
  ]);
  for (let r = 0; r < runs; r++) {
    if (f.ways === 'all' || f.ways === 'socket') for (const w of ways) socket.get(w)!.push(await readSocket(w, mb));
    if (f.ways === 'all' || f.ways === 'http') for (const w of httpWays) httpBody.get(w)!.push(await readHttp(w, mb));
    if (f.ways === 'socket' || f.ways === 'http') continue;
    torrent.get('receive path (unthrottled)')!.push(await fetchTorrent(true, mb));
    if (f.ways === 'all') torrent.get("library's pipes")!.push(await fetchTorrent(false, mb));
  }
  const summary = (m: Map<string, number[]>) =>
    [...m].filter(([, xs]) => xs.length > 0).map(([way, xs]) => ({ way, cpuSeconds: xs.map((x) => Math.round(x * 1000) / 1000), median: Math.round(median(xs) * 1000) / 1000 }));
  const result = { mb, runs, socket: summary(socket), http: summary(httpBody), torrent: summary(torrent) };
  if (f.json) return void process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  console.log(`CPU seconds of the receiving process for ${mb} MiB over loopback TCP (median of ${runs}):`);
  for (const s of [...result.socket, ...result.http, ...result.torrent]) console.log(`  ${s.way.padEnd(28)} ${s.median.toFixed(3).padStart(7)}   (${s.cpuSeconds.join(' / ')})`);
}

const program = new Command('bench-receive')
  .option('--mb <m>', 'MiB to receive', '256')
  .option('--runs <r>', 'runs of each way, alternating', '3')
  .option('--ways <w>', 'all, socket, torrent or http (one kind only: for node --cpu-prof)', 'all')
  .option('--json', 'print JSON')
  .option('--child <role>', '(internal) run as the sender')
  .action((o: Flags) => run(o));
const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
program.parseAsync(argv, { from: 'user' }).catch((err: Error) => {
  process.stderr.write(`bench-receive: ${err.message}\n`);
  process.exitCode = 1;
});
