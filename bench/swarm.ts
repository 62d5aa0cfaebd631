/**
 * Swarm benchmark: one frontend (tracker + seeder + web seed, this process) and
 * N node proxies, each a separate `kickswarm-install proxy` process with its own
 * loopback address, download the same image at once; each download is read by
 * `curl | sha256sum` so neither reading nor hashing is billed to the measured
 * processes.
 *
 *   node --import tsx bench/swarm.ts -- --nodes N --image-mb M [--piece-kb K] [--upload-limit-mb U] [--json]
 *
 * `--upload-limit-mb` caps the frontend's seeder (MiB/s) to stand in for the
 * frontend's network link; without it loopback has no bottleneck but CPU.
 *
 * Runs the built CLI (dist/) when present, else node-installer/main.ts via tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { imagePath } from '../protocol/api.js';
import { TestFrontend, infoHashOf, makeTorrent } from '../test/helpers/swarm.js';
import { tempDir } from '../test/helpers/tmp.js';

interface Flags {
  nodes: string;
  imageMb: string;
  pieceKb: string;
  uploadLimitMb?: string;
  json?: boolean;
}

interface NodeResult {
  node: string;
  seconds: number;
  mbPerSecond: number;
  sha256ok: boolean;
  fromPeers: number;
  fromWebSeed: number;
  uploadedToPeers: number;
  fallbacks: string[];
  cpuSeconds: number;
  peakRssMb: number;
}

const ROOT = new URL('..', import.meta.url).pathname;
const TICKS = 100;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function writeImage(path: string, bytes: number): Promise<string> {
  const out = createWriteStream(path);
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  for (let left = bytes; left > 0; left -= 1 << 20) {
    const chunk = randomBytes(Math.min(left, 1 << 20));
    h.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return h.digest('hex');
}

function startProxy(frontend: string, address: string): Promise<{ child: ChildProcess; url: string; address: string }> {
  const built = existsSync(join(ROOT, 'dist/node-installer/main.js'));
  const args = built ? [join(ROOT, 'bin/kickswarm-install.js')] : ['--import', 'tsx', join(ROOT, 'node-installer/main.ts')];
  args.push('proxy', '--frontend', frontend, '--local-address', address, '--linger', '120', '--log-level', 'warn');
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`proxy ${address} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (url) => resolve({ child, url: url.trim(), address }));
  });
}

function download(url: string): Promise<{ seconds: number; sha256: string }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const sh = spawn('sh', ['-c', `curl -sf "$0" | sha256sum`, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    sh.stdout.on('data', (c: Buffer) => (out += c.toString()));
    sh.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`download from ${url} failed (${code})`));
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, sha256: out.split(' ')[0]! });
    });
  });
}

async function run(o: Flags): Promise<void> {
  const nodes = Number(o.nodes);
  const mb = Number(o.imageMb);
  const pieceLength = Number(o.pieceKb) * 1024;
  if (!(nodes >= 1 && nodes <= 200) || !(mb > 0) || !(pieceLength >= 16384)) throw new Error('bad --nodes, --image-mb or --piece-kb');
  const { dir, cleanup } = await tempDir('kickswarm-bench-');
  const fe = await new TestFrontend().start();
  const children: ChildProcess[] = [];
  try {
    const path = join(dir, 'bench.img');
    const sha = await writeImage(path, mb << 20);
    const torrent = await makeTorrent(path, { announce: fe.announce, urlList: fe.imageUrl('bench'), pieceLength });
    if (o.uploadLimitMb) fe.seeder.setUploadLimit(Number(o.uploadLimitMb) * 2 ** 20);
    await fe.publish('bench', path, torrent, await infoHashOf(torrent));
    const proxies = await Promise.all(Array.from({ length: nodes }, (_, i) => startProxy(fe.url, `127.0.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`)));
    children.push(...proxies.map((p) => p.child));
    const cpu0 = proxies.map((p) => cpuSeconds(p.child.pid!));
    const feCpu0 = process.cpuUsage();
    const t0 = Date.now();
    const runs = await Promise.all(proxies.map((p) => download(`${p.url.replace(/\/+$/, '')}${imagePath('bench')}`)));
    const wall = (Date.now() - t0) / 1000;
    const feCpu = process.cpuUsage(feCpu0);
    const results: NodeResult[] = [];
    for (let i = 0; i < nodes; i++) {
      const p = proxies[i]!;
      const stats = (await (await fetch(`${p.url}_proxy/stats`)).json()) as Record<string, unknown>[];
      const s = stats.find((x) => x.name === 'bench' || String(x.name).startsWith('bench@'))!;
      results.push({
        node: p.address,
        seconds: round(runs[i]!.seconds),
        mbPerSecond: round(mb / runs[i]!.seconds),
        sha256ok: runs[i]!.sha256 === sha,
        fromPeers: Number(s.fromPeers),
        fromWebSeed: Number(s.fromWebSeed),
        uploadedToPeers: Number(s.uploadedToPeers),
        fallbacks: s.fallbacks as string[],
        cpuSeconds: round(cpuSeconds(p.child.pid!) - cpu0[i]!),
        peakRssMb: round(peakRssMb(p.child.pid!)),
      });
    }
    const seeded = fe.seeder.stats()[0]!.uploaded;
    const webSeed = fe.webSeedBytes.get('bench') ?? 0;
    const byPeers = results.reduce((n, r) => n + r.uploadedToPeers, 0);
    const summary = {
      nodes,
      imageMb: mb,
      pieceKb: pieceLength / 1024,
      seederCapMbPerSecond: o.uploadLimitMb ? Number(o.uploadLimitMb) : null,
      wallSeconds: round(wall),
      aggregateMbPerSecond: round((nodes * mb) / wall),
      frontendSentMb: round((seeded + webSeed) / 2 ** 20),
      seederSentMb: round(seeded / 2 ** 20),
      webSeedSentMb: round(webSeed / 2 ** 20),
      peersSentMb: round(byPeers / 2 ** 20),
      frontendCpuSeconds: round((feCpu.user + feCpu.system) / 1e6),
      frontendPeakRssMb: round(process.resourceUsage().maxRSS / 1024),
      allIdentical: results.every((r) => r.sha256ok),
      nodesDetail: results,
    };
    if (o.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      const { nodesDetail, ...head } = summary;
      console.log(
        Object.entries(head)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
      );
      console.log('node           secs    MB/s  peers-in MB  webseed MB  up MB  cpu s  rss MB  ok  fallbacks');
      for (const r of nodesDetail) {
        console.log(
          `${r.node.padEnd(14)} ${fmt(r.seconds, 6)} ${fmt(r.mbPerSecond, 7)} ${fmt(r.fromPeers / 2 ** 20, 12)} ${fmt(r.fromWebSeed / 2 ** 20, 11)} ${fmt(r.uploadedToPeers / 2 ** 20, 6)} ${fmt(r.cpuSeconds, 6)} ${fmt(r.peakRssMb, 7)}  ${r.sha256ok ? 'y' : 'N'}   ${r.fallbacks.join('; ') || '-'}`,
        );
      }
    }
    if (!summary.allIdentical) process.exitCode = 1;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await fe.close();
    await cleanup();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function fmt(n: number, w: number): string {
  return n.toFixed(2).padStart(w);
}

const program = new Command('bench-swarm')
  .option('--nodes <n>', 'node proxies', '4')
  .option('--image-mb <m>', 'image size in MiB', '64')
  .option('--piece-kb <k>', 'piece length in KiB (the image store picks 256 for images under 500 MiB)', '256')
  .option('--upload-limit-mb <u>', "cap the frontend's seeder at U MiB/s (stands in for the frontend's link)")
  .option('--json', 'print JSON')
  .action((o: Flags) => run(o));
const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
program.parseAsync(argv, { from: 'user' }).catch((err: Error) => {
  process.stderr.write(`bench-swarm: ${err.message}\n`);
  process.exitCode = 1;
});
