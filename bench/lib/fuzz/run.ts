/**
 * One fuzz run against real processes: `kickswarm serve` (HTTP, TFTP, the
 * tracker and its seeder) and a node proxy (`kickswarm-install proxy`) that
 * holds the image, each in its own process so a crash is seen as a crash.
 * Sets up a data dir (3 nodes at install, one image, boot files), runs the
 * TFTP, HTTP and BitTorrent-wire fuzzers one after the other for shares of
 * `seconds`, samples each process's RSS and open file descriptors, and ends
 * with a well-behaved TFTP read and HTTP request to prove both still serve.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import parseTorrentModule from 'parse-torrent';
import { ensureDataDir } from '../../../server/datadir.js';
import { ImageStore } from '../../../server/images/store.js';
import { startFrontendProcess } from '../frontend-process.js';
import { seedCluster } from '../seed.js';
import { tftpGet } from '../tftp-client.js';
import { fuzzHttp } from './http.js';
import { Rng } from './random.js';
import type { TargetReport } from './target.js';
import { fuzzTftp } from './tftp.js';
import { fuzzWire } from './wire.js';
import { freePort } from '../ports.js';

const parseTorrent = parseTorrentModule as unknown as (b: Uint8Array) => Promise<{ infoHash: string; pieces: string[] }>;
const REPO = new URL('../../..', import.meta.url).pathname;
const IMAGE = 'fuzzimg';

export interface FuzzRunOptions {
  seconds: number;
  seed: number;
  /** Include the node proxy (default true). */
  proxy?: boolean;
  log?: (line: string) => void;
}

export interface ProcessFigures {
  /** Exited during the run (a crash: nothing here stops it on purpose before the end). */
  crashed: boolean;
  exit?: string;
  /** The last lines the process printed, when it crashed (its own account of why). */
  lastLines?: string[];
  peakRssMb: number;
  peakFds: number;
  /** Open file descriptors once set up, before any fuzzing. */
  baselineFds: number;
  /** Open file descriptors after the run, once what the fuzzers left open timed out (waits up to 30 s for it). */
  endFds: number;
}

export interface FuzzRunReport {
  seed: number;
  seconds: number;
  targets: TargetReport[];
  inputs: number;
  serverErrors: number;
  processes: Record<string, ProcessFigures>;
  /** A well-behaved TFTP read and HTTP request both worked after the run. */
  stillServes: boolean;
  /** Each of those checks: `ok` or what went wrong. */
  checks: Record<string, string>;
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const fdCount = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;
const rssMb = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

class Watch {
  readonly figures: ProcessFigures;
  private timer: NodeJS.Timeout;
  constructor(
    readonly pid: number,
    child: { once(e: 'exit', f: (code: number | null, signal: string | null) => void): void },
  ) {
    this.figures = { crashed: false, peakRssMb: rssMb(pid), peakFds: fdCount(pid), baselineFds: fdCount(pid), endFds: 0 };
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.figures.crashed = true;
      this.figures.exit = `code ${code} signal ${signal}`;
    });
    this.timer = setInterval(() => this.sample(), 100);
  }
  stopping = false;
  sample(): void {
    try {
      this.figures.peakRssMb = Math.max(this.figures.peakRssMb, rssMb(this.pid));
      this.figures.peakFds = Math.max(this.figures.peakFds, fdCount(this.pid));
    } catch {
      // gone
    }
  }
  end(): void {
    this.sample();
    try {
      this.figures.endFds = fdCount(this.pid);
    } catch {
      this.figures.endFds = -1;
    }
    this.figures.peakRssMb = Math.round(this.figures.peakRssMb * 10) / 10;
    clearInterval(this.timer);
    this.stopping = true;
  }
}

async function startProxy(frontendUrl: string, localAddress: string): Promise<{ child: ChildProcess; httpPort: number; peerPort: number; lastLines: string[] }> {
  const httpPort = await freePort();
  const peerPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(REPO, 'node-installer/main.ts'),
      'proxy',
      '--frontend',
      frontendUrl,
      '--port',
      String(httpPort),
      '--peer-port',
      String(peerPort),
      '--local-address',
      localAddress,
      '--linger',
      '3600',
      '--log-level',
      'warn',
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lastLines: string[] = [];
  const keep = (line: string) => {
    lastLines.push(line.slice(0, 500));
    if (lastLines.length > 20) lastLines.shift();
  };
  createInterface({ input: child.stderr! }).on('line', keep);
  createInterface({ input: child.stdout! }).on('line', keep);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode} before it was listening`);
    const ok = await fetch(`http://127.0.0.1:${httpPort}/`).then(
      () => true,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('proxy did not start within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, httpPort, peerPort, lastLines };
}

export async function runFuzz(o: FuzzRunOptions): Promise<FuzzRunReport> {
  const log = o.log ?? (() => undefined);
  const rng = new Rng(o.seed);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-fuzz-'));
  const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(dataDir, { recursive: true, force: true })];
  try {
    const dirs = ensureDataDir(dataDir);
    const { nodes } = seedCluster(dataDir, 3);
    const raw = path.join(dataDir, 'raw.img');
    fs.writeFileSync(raw, Buffer.concat([crypto.randomBytes(2 * 1024 * 1024), Buffer.alloc(1024 * 1024)]));
    await new ImageStore(dirs.images).add(raw, IMAGE);
    fs.writeFileSync(path.join(dirs.tftpboot, 'pxelinux.0'), crypto.randomBytes(40 * 1024));
    fs.mkdirSync(path.join(dirs.tftpboot, 'kickswarm'), { recursive: true });
    fs.writeFileSync(path.join(dirs.tftpboot, 'kickswarm/vmlinuz'), crypto.randomBytes(300 * 1024));
    const seederPort = await freePort();
    // The node proxy fetches the image by its node's address: install sessions (which have their own tests) are off here.
    fs.writeFileSync(path.join(dataDir, 'kickswarm.yaml'), `swarm:\n  peerPort: ${seederPort}\nsessions:\n  enabled: false\n`);

    const fe = await startFrontendProcess({ dataDir, logLevel: 'fatal' });
    cleanups.push(() => fe.stop());
    const token = fs.readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    const torrentRes = await fetch(`${fe.url}/install/images/${IMAGE}.torrent`, { headers: auth });
    if (!torrentRes.ok) throw new Error(`torrent: HTTP ${torrentRes.status}`);
    const torrent = await parseTorrent(Buffer.from(await torrentRes.arrayBuffer()));
    const infoHash = Buffer.from(torrent.infoHash, 'hex');
    log(`frontend pid ${fe.pid} ${fe.url} tftp ${fe.tftpPort} seeder ${seederPort}; image ${IMAGE} ${torrent.infoHash}`);

    let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
    let imageSha = '';
    if (o.proxy !== false) {
      proxy = await startProxy(fe.url, nodes[0]!.ip);
      const p = proxy;
      cleanups.push(async () => {
        if (p.child.exitCode !== null) return;
        p.child.kill('SIGTERM');
        await new Promise((r) => p.child.once('exit', r));
      });
      const res = await fetch(`http://127.0.0.1:${proxy.httpPort}/install/images/${IMAGE}`);
      imageSha = sha256(Buffer.from(await res.arrayBuffer()));
      if (!res.ok) throw new Error(`image through the proxy: HTTP ${res.status}`);
      log(`proxy pid ${proxy.child.pid} http ${proxy.httpPort} peer ${proxy.peerPort}`);
    }
    const feChild = { once: (_e: 'exit', f: (c: number | null, s: string | null) => void) => void fePoll(fe.pid, f) };
    const watches: Record<string, Watch> = { frontend: new Watch(fe.pid, feChild) };
    if (proxy) {
      const p = proxy;
      const w = (watches.proxy = new Watch(p.child.pid!, p.child as never));
      // 'close' comes once the process's output is read to the end.
      p.child.once('close', () => {
        if (w.figures.crashed) w.figures.lastLines = [...p.lastLines];
      });
    }
    const crashed = () => Object.values(watches).some((w) => w.figures.crashed);

    const routes = [
      '/install/sbin/kickstart.cgi',
      '/install/sbin/public/setPxeboot.cgi',
      '/install/sbin/boot.ipxe',
      `/install/images/${IMAGE}`,
      `/install/images/${IMAGE}.torrent`,
      '/install/images/nope',
      '/install/boot/pxelinux.0',
      '/install/boot/kickswarm/vmlinuz',
      '/install/sbin/capture.cgi',
      '/install/sbin/report.cgi',
      '/pxe/setBootImage',
      '/pxe/clearBootImage',
      '/frisbee/status',
      '/frisbee/getAddress',
      '/metrics',
      '/announce',
      '/scrape',
      '/api/v1/nodes',
      `/api/v1/nodes/${nodes[1]!.name}`,
      `/api/v1/nodes/${nodes[1]!.name}/boot`,
      '/api/v1/boot',
      '/api/v1/images',
      '/api/v1/profiles/status',
      '/api/v1/status',
      '/ui/',
      '/ui/login',
      '/',
    ];
    const start = Date.now();
    const share = (f: number) => start + o.seconds * 1000 * f;
    const targets: TargetReport[] = [];
    const names = ['pxelinux.0', 'kickswarm/vmlinuz', `pxelinux.cfg/01-${nodes[0]!.mac.replace(/:/g, '-')}`, 'pxelinux.cfg/default', 'pxelinux.cfg/7F010001'];
    targets.push(await fuzzTftp({ host: '127.0.0.1', port: fe.tftpPort, names, rng, deadline: share(0.25), stop: crashed }));
    log(`tftp: ${targets.at(-1)!.inputs} inputs`);
    targets.push(
      await fuzzHttp({ host: '127.0.0.1', port: fe.httpPort, routes, adminToken: token, nodeIps: nodes.map((n) => n.ip), macs: nodes.map((n) => n.mac), rng, deadline: share(0.6), stop: crashed }),
    );
    log(`http: ${targets.at(-1)!.inputs} inputs`);
    targets.push(await fuzzWire({ name: 'wire-seeder', host: '127.0.0.1', port: seederPort, infoHash, pieces: torrent.pieces.length, rng, deadline: share(proxy ? 0.8 : 1), stop: crashed }));
    log(`wire-seeder: ${targets.at(-1)!.inputs} inputs`);
    if (proxy) {
      targets.push(await fuzzWire({ name: 'wire-proxy', host: nodes[0]!.ip, port: proxy.peerPort, infoHash, pieces: torrent.pieces.length, rng, deadline: share(1), stop: crashed }));
      log(`wire-proxy: ${targets.at(-1)!.inputs} inputs`);
    }
    const seconds = (Date.now() - start) / 1000;

    // Still serving: a TFTP read and an HTTP request, as a well-behaved node makes them.
    const checks: Record<string, string> = {};
    if (!crashed()) {
      checks.tftp = await tftpGet({ host: '127.0.0.1', port: fe.tftpPort, file: 'pxelinux.0', blksize: 1468, retries: 5, timeoutMs: 1000, localAddress: nodes[2]!.ip }).then(
        (r) => (r.bytes === 40 * 1024 ? 'ok' : `${r.bytes} bytes`),
        (e: Error) => e.message,
      );
      checks.http = await fetch(`${fe.url}/install/images/${IMAGE}.torrent`, { headers: auth }).then(
        (x) => (x.status === 200 ? 'ok' : `HTTP ${x.status}`),
        (e: Error) => e.message,
      );
      if (proxy) {
        checks.proxy = await fetch(`http://127.0.0.1:${proxy.httpPort}/install/images/${IMAGE}`).then(
          async (x) => (sha256(Buffer.from(await x.arrayBuffer())) === imageSha ? 'ok' : `HTTP ${x.status}, other bytes than before the run`),
          (e: Error) => e.message,
        );
      }
    }
    const stillServes = !crashed() && Object.values(checks).every((c) => c === 'ok');
    // Transfers the fuzzer left unanswered hold their socket until they time out (about 12 s):
    // wait (up to 30 s) for every process to come back near its baseline before counting what stays open.
    const settled = Date.now() + 30_000;
    while (Date.now() < settled && Object.values(watches).some((w) => !w.figures.crashed && safeFds(w.pid) > w.figures.baselineFds + 5)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const processes: Record<string, ProcessFigures> = {};
    for (const [k, w] of Object.entries(watches)) {
      w.end();
      processes[k] = w.figures;
    }
    return {
      seed: o.seed,
      seconds: Math.round(seconds * 10) / 10,
      targets,
      inputs: targets.reduce((a, t) => a + t.inputs, 0),
      serverErrors: targets.reduce((a, t) => a + t.serverErrors, 0),
      processes,
      stillServes,
      checks,
    };
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
}

/** Calls `f` once when process `pid` is gone (it is not our child's handle: the frontend helper owns that). */
function fePoll(pid: number, f: (code: number | null, signal: string | null) => void): void {
  const t = setInterval(() => {
    if (!fs.existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`))) {
      clearInterval(t);
      f(null, 'exited');
    }
  }, 100);
  t.unref();
}

function safeFds(pid: number): number {
  try {
    return fdCount(pid);
  } catch {
    return -1;
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
