/**
 * Multicast (frisbee) benchmark on loopback: one frontend (image store, image
 * routes, frisbee routes and the multicast sender, this process) and N
 * receivers, each a separate process with its own 127.0.0.x address writing
 * the image into its own target file. Receivers start together; afterwards
 * each target's SHA-256 is checked against the raw image.
 *
 *   node --import tsx bench/multicast.ts --nodes N --image-mb M [--loss P] [--rate-mb R] [--json]
 *
 * `--loss` is the fraction (0.05) or percentage (5%) of datagrams each
 * receiver drops on purpose. The image is half random, a quarter zeros and a
 * quarter compressible text, in 1 MiB chunks.
 *
 * Reports: seconds until every node completed, bytes sent / stored data size
 * (Frisbee's duplicate-data measure: 1.00 = every stored byte sent once),
 * sender requests per second, and per node seconds, loss and requests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import Koa from 'koa';
import pino from 'pino';
import { receiveMulticast } from '../node-installer/fetch/multicast.js';
import { writeFully } from '../protocol/file-io.js';
import { HEADER_SIZE, parseHeader } from '../protocol/image-format.js';
import { errorMiddleware } from '../server/http/errors.js';
import { imageRoutes } from '../server/http/routes/images.js';
import { ImageStore } from '../server/images/store.js';
import { frisbeeRoutes } from '../server/multicast/routes.js';
import { MulticastSessions } from '../server/multicast/sessions.js';

const MiB = 1024 * 1024;
const SELF = new URL(import.meta.url).pathname;

interface NodeResult {
  node: string;
  seconds: number;
  /** Date.now() when the last chunk was written. */
  doneAt: number;
  sha256ok: boolean;
  datagramsReceived: number;
  datagramsLost: number;
  duplicateBlocks: number;
  requestsSent: number;
  error?: string;
}

function parseLoss(s: string): number {
  const pct = s.endsWith('%');
  const v = Number(pct ? s.slice(0, -1) : s) / (pct ? 100 : 1);
  if (!Number.isFinite(v) || v < 0 || v >= 1) throw new Error(`--loss ${s}: want a fraction 0..1 or a percentage like 5%`);
  return v;
}

async function makeRaw(file: string, bytes: number): Promise<string> {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  const text = Buffer.from('kickswarm multicast bench: the quick brown fox jumps over the lazy dog\n'.repeat(16_000)).subarray(0, MiB);
  for (let i = 0, off = 0; off < bytes; i++, off += MiB) {
    const kind = i % 4;
    const n = Math.min(MiB, bytes - off);
    const b = kind < 2 ? crypto.randomBytes(n) : kind === 2 ? Buffer.alloc(n) : text.subarray(0, n);
    fs.writeSync(fd, b);
    h.update(b);
  }
  fs.closeSync(fd);
  return h.digest('hex');
}

/** Child process: receive into `target`, report over IPC. */
async function receiver(argv: Record<string, string>): Promise<void> {
  const log = pino({ level: 'silent' });
  await new Promise<void>((r) => process.once('message', () => r()));
  const started = Date.now();
  const fh = await fs.promises.open(argv.target!, 'r+');
  const res: NodeResult = { node: argv.local!, seconds: 0, doneAt: 0, sha256ok: false, datagramsReceived: 0, datagramsLost: 0, duplicateBlocks: 0, requestsSent: 0 };
  try {
    const st = await receiveMulticast({
      frontend: argv.frontend!,
      image: argv.image!,
      localAddress: argv.local,
      lossRate: Number(argv.loss),
      noDataTimeoutMs: 20_000,
      log,
      writeChunk: (_n, off, raw) => writeFully(fh, raw, off),
    });
    res.doneAt = Date.now();
    res.seconds = (res.doneAt - started) / 1000;
    Object.assign(res, { datagramsReceived: st.datagramsReceived, datagramsLost: st.datagramsLost, duplicateBlocks: st.duplicateBlocks, requestsSent: st.requestsSent });
  } catch (e) {
    res.error = (e as Error).message;
  }
  await fh.close();
  const h = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(argv.target!, { highWaterMark: MiB })) h.update(c as Buffer);
  res.sha256ok = h.digest('hex') === argv.sha;
  process.send!(res, () => process.exit(0));
}

async function main(): Promise<void> {
  const cmd = new Command()
    .option('--nodes <n>', 'receivers', '4')
    .option('--image-mb <m>', 'image size in MiB', '64')
    .option('--loss <p>', 'datagrams each receiver drops (0.05 or 5%)', '0')
    .option('--rate-mb <r>', 'sender rate cap in MB/s (10^6 bytes)', '100')
    .option('--json', 'one JSON object on stdout')
    .option('--role <r>')
    .option('--frontend <u>')
    .option('--image <n>')
    .option('--local <a>')
    .option('--target <f>')
    .option('--sha <h>')
    .allowExcessArguments(false)
    .parse(process.argv.filter((a) => a !== '--'));
  const o = cmd.opts<Record<string, string>>();
  if (o.role === 'receiver') return receiver(o);

  const nodes = Number(o.nodes);
  const imageBytes = Math.round(Number(o.imageMb) * MiB);
  const loss = parseLoss(o.loss!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ksbench-mc-'));
  const log = pino({ level: 'silent' });
  const children: ChildProcess[] = [];
  let sessions: MulticastSessions | undefined;
  let server: http.Server | undefined;
  try {
    const sha = await makeRaw(path.join(dir, 'raw'), imageBytes);
    const store = new ImageStore(path.join(dir, 'images'));
    await store.add(path.join(dir, 'raw'), 'bench');
    const head = Buffer.alloc(HEADER_SIZE);
    const hfd = fs.openSync(store.path('bench'), 'r');
    fs.readSync(hfd, head, 0, HEADER_SIZE, 0);
    fs.closeSync(hfd);
    const dataBytes = parseHeader(head).dataLength;
    sessions = new MulticastSessions({ store, log, rateBytesPerSec: Number(o.rateMb) * 1e6, portPool: `${30_000 + Math.floor(Math.random() * 20_000)}` });
    await sessions.start();
    const app = new Koa();
    app.use(errorMiddleware(log));
    for (const r of [imageRoutes({ store, torrentFor: async () => Buffer.alloc(0), log }), frisbeeRoutes(sessions)]) app.use(r.routes());
    server = http.createServer(app.callback());
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const frontend = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const results: Promise<NodeResult>[] = [];
    for (let i = 0; i < nodes; i++) {
      const target = path.join(dir, `node${i}.img`);
      fs.writeFileSync(target, '');
      fs.truncateSync(target, imageBytes);
      const args = ['--import', 'tsx', SELF, '--role', 'receiver', '--frontend', frontend, '--image', 'bench', '--local', `127.0.0.${10 + i}`];
      args.push('--target', target, '--sha', sha, '--loss', String(loss));
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      results.push(
        new Promise((resolve, reject) => {
          child.once('message', (m) => resolve(m as NodeResult));
          child.once('exit', (code) => reject(new Error(`receiver ${i} exited with ${code}`)));
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 1500 + 150 * nodes));
    const t0 = Date.now();
    for (const c of children) c.send('go');
    const done = await Promise.all(results);
    const seconds = (Math.max(...done.map((d) => d.doneAt)) - t0) / 1000;
    const st = sessions.status()[0]!;
    const summary = {
      nodes,
      imageMb: imageBytes / MiB,
      storedMb: +(dataBytes / MiB).toFixed(1),
      loss,
      rateCapMBps: Number(o.rateMb),
      secondsAllDone: +seconds.toFixed(2),
      aggregateMBps: +((nodes * imageBytes) / 1e6 / seconds).toFixed(1),
      duplicateRatio: +(st.payloadBytesSent / dataBytes).toFixed(3),
      bytesSent: st.bytesSent,
      requestsPerSecond: +(st.requestsReceived / seconds).toFixed(1),
      chunksSent: st.chunksSent,
      chunksResent: st.chunksResent,
      finalRateMBps: +(st.rate / 1e6).toFixed(1),
      allVerified: done.every((d) => d.sha256ok && !d.error),
      perNode: done.map(({ doneAt: _d, ...d }) => d),
    };
    if (o.json) {
      console.log(JSON.stringify(summary));
    } else {
      console.log(`multicast: ${nodes} nodes, ${summary.imageMb} MiB image (${summary.storedMb} MiB stored), loss ${loss * 100}%, cap ${o.rateMb} MB/s`);
      console.log(`  all nodes done in ${summary.secondsAllDone} s (${summary.aggregateMBps} MB/s aggregate), verified: ${summary.allVerified}`);
      console.log(`  sent/stored ${summary.duplicateRatio}, ${summary.requestsPerSecond} requests/s, chunks resent ${st.chunksResent}, final rate ${summary.finalRateMBps} MB/s`);
      for (const d of summary.perNode) {
        console.log(
          `  ${d.node}: ${d.seconds.toFixed(2)} s, lost ${d.datagramsLost}/${d.datagramsReceived + d.datagramsLost}, dup blocks ${d.duplicateBlocks}, requests ${d.requestsSent}${d.error ? `, ERROR ${d.error}` : ''}`,
        );
      }
    }
    if (!summary.allVerified) process.exitCode = 1;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
    await sessions?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
