/**
 * The node's data path: one real frontend (`kickswarm serve`, its own process)
 * and N nodes on loopback, each either a whole `kickswarm-install run`
 * (`--mode install`) or a `kickswarm-install proxy` read by curl
 * (`--mode proxy`). Per node: CPU seconds per GiB of raw image, MiB/s of raw
 * image, bytes received from peers and from the frontend, peak RSS; for the
 * frontend: CPU seconds and the copies it sent (swarm + HTTP bytes from its
 * /metrics over the image's stored size).
 *
 *   npm run bench:node-path -- [--nodes N] [--method torrent|http|multicast] [--image-mb M]
 *       [--data mixed|random|synthetic] [--mode install|proxy] [--linger S] [--cpu-prof DIR] [--node-flags F] [--child-output DIR]
 *       [--block-size B] [--floor] [--json]
 *
 * `--floor` starts no frontend and no node: it times the steps an install of
 * the image cannot avoid (bench/lib/node-floor.ts). `--block-size` is the
 * frontend's multicast.blockSize for the run (and the floor's datagrams).
 *
 * Installer CPU is what the process reports for itself (`--json`): the whole
 * process and the delivery alone (without start-up, kickstart, %post).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { DATA_KINDS, type DataKind, sha256Prefix } from './cluster/image.js';
import { INSTALLER_FORMS, resolveRuntime, RUNTIMES, type InstallerForm, type RuntimeChoice, withInstallerBundle, withInstallerFlags } from './cluster/runtime.js';
import { prepareData, IMAGE_NAME } from './cluster/setup.js';
import { formatProfileSummary, summariseCpuProfile } from './lib/cpuprofile.js';
import { startFrontendProcess } from './lib/frontend-process.js';
import { measureFloor } from './lib/node-floor.js';
import { processCpuSeconds, sampleBusyCores } from './lib/proc.js';
import { MULTICAST_BLOCK_SIZE } from '../server/config/schema.js';
import { dataDirPaths, ensureApiToken } from '../server/datadir.js';
import { Inventory } from '../server/inventory/store.js';
import type { NodeName } from '../protocol/node.js';

interface Flags {
  nodes: string;
  method: 'torrent' | 'http' | 'multicast';
  imageMb: string;
  data: DataKind;
  mode: 'install' | 'proxy';
  linger: string;
  runtime: RuntimeChoice;
  installer: InstallerForm;
  json?: boolean;
  keep?: boolean;
  cpuProf?: string;
  floor?: boolean;
  nodeFlags?: string;
  childOutput?: string;
  blockSize?: string;
}

interface NodeResult {
  node: string;
  ok: boolean;
  /** The installer's whole run (with --linger), or the proxy read. */
  seconds: number;
  /** Raw MiB (stored MiB for --mode proxy) over `seconds`. */
  rawMibPerSecond: number;
  /** The image's delivery alone: fetched, verified and written (install mode). */
  deliverySeconds?: number;
  /** Raw MiB written per second of the delivery: the node's data path rate. */
  deliveryMibPerSecond?: number;
  cpuSeconds: number;
  cpuSecondsPerGiB: number;
  deliveryCpuSeconds?: number;
  deliveryCpuSecondsPerGiB?: number;
  peakRssMb: number;
  /** The installer's minor page faults (install mode). */
  pageFaults?: number;
  /** Share of the image bytes the installer wrote around the page cache (O_DIRECT; install mode). */
  targetDirectShare?: number;
  bytesFromPeers: number;
  bytesFromFrontend: number;
  receivedOverStored: number;
  uploadedToPeers?: number;
}

const GiB = 2 ** 30;
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').at(-1));
  return sum;
}

/** Saves one installer's output as DIR/NODE.stdout and DIR/NODE.stderr (stderr: its last 4,000 characters). */
function writeChildOutput(dir: string, node: string, r: { stdout: string; stderr: string }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${node}.stdout`), r.stdout);
  fs.writeFileSync(path.join(dir, `${node}.stderr`), r.stderr);
}

function runChild(argv: string[], onPid?: (pid: number) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    onPid?.(c.pid!);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The bench image's stored file in `dataDir`. */
function imageFile(dataDir: string): string {
  const images = path.join(dataDir, 'images');
  const file = fs.readdirSync(images).find((n) => n.endsWith('.ksimg'));
  if (!file) throw new Error(`no .ksimg in ${images}`);
  return path.join(images, file);
}

async function printFloor(dataDir: string, work: string, json: boolean, blockSize: number | undefined): Promise<void> {
  const r = await measureFloor(imageFile(dataDir), work, { blockSize });
  if (json) return void process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  console.log(`image: ${r.rawSize} bytes raw, ${r.storedSize} stored`);
  for (const s of r.steps) console.log(`${s.step.padEnd(26)} ${s.cpuSeconds.toFixed(2).padStart(6)} CPU-s  ${s.cpuSecondsPerGiBRaw.toFixed(2).padStart(6)} CPU-s/GiB raw`);
  console.log(`${'swarm floor'.padEnd(26)} ${''.padStart(6)}        ${r.totalCpuSecondsPerGiBRaw.toFixed(2).padStart(6)} CPU-s/GiB raw`);
  console.log(`${'HTTP floor'.padEnd(26)} ${''.padStart(6)}        ${r.httpCpuSecondsPerGiBRaw.toFixed(2).padStart(6)} CPU-s/GiB raw`);
  console.log(`${'multicast floor'.padEnd(26)} ${''.padStart(6)}        ${r.multicastCpuSecondsPerGiBRaw.toFixed(2).padStart(6)} CPU-s/GiB raw`);
}

async function run(f: Flags): Promise<void> {
  const nodes = Number(f.nodes);
  const mb = Number(f.imageMb);
  if (!(Number.isInteger(nodes) && nodes >= 1 && nodes <= 64) || !(mb >= 8)) throw new Error('--nodes 1-64 and --image-mb >= 8');
  if (f.mode === 'proxy' && f.method !== 'torrent') throw new Error('--mode proxy measures the swarm proxy (method torrent)');
  const blockSize = f.blockSize === undefined ? undefined : Number(f.blockSize);
  const { min, max } = MULTICAST_BLOCK_SIZE;
  if (blockSize !== undefined && !(Number.isInteger(blockSize) && blockSize >= min && blockSize <= max)) throw new Error(`--block-size ${min}-${max} (bytes of multicast payload per datagram)`);
  const say = (s: string) => (f.json ? process.stderr : process.stdout).write(`${s}\n`);
  const base = resolveRuntime(f.runtime);
  const runtime = f.installer === 'bundle' ? await withInstallerBundle(base) : base;
  say(`runtime: ${runtime.note}`);
  const [nodeBin, ...rest] = withInstallerFlags(runtime, f.nodeFlags).installer;
  const prof = f.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(f.cpuProf)}`] : [];
  const installer = [nodeBin!, ...prof, ...rest];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-node-path-'));
  const nodeIps = Array.from({ length: nodes }, (_, i) => `127.0.3.${i + 2}`);
  let fe: Awaited<ReturnType<typeof startFrontendProcess>> | undefined;
  try {
    const data = await prepareData({
      work,
      runtime,
      method: f.method,
      imageMb: mb,
      data: f.data,
      frontendIp: '127.0.0.1',
      nodeIps,
      multicastRateBytesPerSec: 400 * 2 ** 20,
      multicastBlockSize: blockSize,
      say,
    });
    const img = data.image;
    if (f.floor) return void (await printFloor(data.dataDir, work, f.json === true, blockSize));
    // --mode proxy checks what curl read against the stored image file.
    const storedSha256 = f.mode === 'proxy' ? sha256Prefix(imageFile(data.dataDir), img.storedSize) : '';
    fe = await startFrontendProcess({ dataDir: data.dataDir, logLevel: 'warn' });
    // /metrics is for registered nodes and the admin token.
    const adminAuth = { headers: { authorization: `Bearer ${ensureApiToken(dataDirPaths(data.dataDir))}` } };
    const metrics0 = await (await fetch(`${fe.url}/metrics`, adminAuth)).text();
    const load = await sampleBusyCores(1000);
    say(`machine busy before the run: ${load.toFixed(2)} cores`);
    const fe0 = fe.cpuSeconds();
    const t0 = Date.now();
    const results = await Promise.all(
      data.nodes.map(async (n): Promise<NodeResult> => {
        // The node's install session token, as its boot config would carry it (read from the data dir).
        const inventory = new Inventory(dataDirPaths(data.dataDir).db, { readonly: true });
        const session = inventory.session(n.name as NodeName)?.token ?? '';
        inventory.close();
        if (f.mode === 'install') {
          // prettier-ignore
          const argv = [...installer, 'run', '--frontend', fe!.url, '--mac', n.mac, '--session', session, '--target', n.target, '--no-reboot',
            '--local-address', n.ip, '--linger', f.linger, '--deadline', '120', '--log-level', 'warn', '--json'];
          const r = await runChild(argv);
          // Everything the installer printed (its log, and what --node-flags such as --trace-opt print).
          if (f.childOutput) writeChildOutput(f.childOutput, n.name, r);
          if (r.code !== 0) throw new Error(`installer ${n.name} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
          const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
          const ok = sha256Prefix(n.target, img.rawSize) === img.sha256;
          return {
            node: n.name,
            ok,
            seconds: round(j.seconds!),
            rawMibPerSecond: round(img.rawSize / 2 ** 20 / j.seconds!),
            deliverySeconds: round(j.deliverySeconds!),
            deliveryMibPerSecond: round(img.rawSize / 2 ** 20 / j.deliverySeconds!),
            cpuSeconds: round(j.cpuSeconds!),
            cpuSecondsPerGiB: round((j.cpuSeconds! * GiB) / img.rawSize),
            deliveryCpuSeconds: round(j.deliveryCpuSeconds!),
            deliveryCpuSecondsPerGiB: round((j.deliveryCpuSeconds! * GiB) / img.rawSize),
            peakRssMb: round(j.peakRssMb!),
            pageFaults: j.pageFaults!,
            targetDirectShare: round(j.targetDirectBytes! / Math.max(1, j.targetDirectBytes! + j.targetPageCacheBytes!), 3),
            bytesFromPeers: j.bytesFromPeers!,
            bytesFromFrontend: j.bytesFromFrontend!,
            receivedOverStored: round((j.bytesFromPeers! + j.bytesFromFrontend!) / img.storedSize, 3),
          };
        }
        // --mode proxy: the proxy alone, its HTTP side read in order by curl.
        const proxyArgv = [...installer, 'proxy', '--frontend', fe!.url, '--session', session, '--local-address', n.ip, '--linger', '600', '--log-level', 'warn'];
        const child = spawn(proxyArgv[0]!, proxyArgv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
        try {
          const url = await new Promise<string>((resolve, reject) => {
            child.once('exit', (c) => reject(new Error(`proxy exited ${c}`)));
            child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim().split('\n')[0]!));
          });
          const cpu0 = processCpuSeconds(child.pid!);
          const s0 = Date.now();
          const r = await runChild(['bash', '-o', 'pipefail', '-c', 'curl -sf "$0" | sha256sum', `${url.replace(/\/$/, '')}/install/images/${IMAGE_NAME}`]);
          const seconds = (Date.now() - s0) / 1000;
          const cpu = processCpuSeconds(child.pid!) - cpu0;
          const st = ((await (await fetch(`${url.replace(/\/$/, '')}/_proxy/stats`)).json()) as Record<string, number>[]).find((x) => (x as unknown as { name: string }).name === IMAGE_NAME)!;
          const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
          return {
            node: n.name,
            ok: r.code === 0 && r.stdout.trim().split(/\s/)[0] === storedSha256,
            seconds: round(seconds),
            rawMibPerSecond: round(img.storedSize / 2 ** 20 / seconds),
            cpuSeconds: round(cpu),
            cpuSecondsPerGiB: round((cpu * GiB) / img.storedSize),
            peakRssMb: round(hwm),
            bytesFromPeers: st.fromPeers!,
            bytesFromFrontend: st.fromWebSeed!,
            uploadedToPeers: st.uploadedToPeers!,
            receivedOverStored: round((st.fromPeers! + st.fromWebSeed!) / img.storedSize, 3),
          };
        } finally {
          child.kill('SIGTERM');
        }
      }),
    );
    const wall = (Date.now() - t0) / 1000;
    const feCpu = fe.cpuSeconds() - fe0;
    const metrics1 = await (await fetch(`${fe.url}/metrics`, adminAuth)).text();
    const sent =
      metric(metrics1, 'kickswarm_swarm_bytes_sent_total') -
      metric(metrics0, 'kickswarm_swarm_bytes_sent_total') +
      metric(metrics1, 'kickswarm_image_http_bytes_sent_total') -
      metric(metrics0, 'kickswarm_image_http_bytes_sent_total');
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = {
      mode: f.mode,
      method: f.method,
      nodes,
      data: f.data,
      linger: Number(f.linger),
      installer: f.installer,
      image: { rawSize: img.rawSize, storedSize: img.storedSize, chunkSize: img.chunkSize },
      machineBusyCoresBefore: round(load),
      wallSeconds: round(wall),
      frontend: {
        cpuSeconds: round(feCpu),
        cpuSecondsPerGiBRaw: round((feCpu * GiB) / img.rawSize),
        sentBytes: sent,
        copiesSent: round(sent / img.storedSize, 3),
        peakRssMb: round(fe.rssMb().peak),
      },
      medianNode: {
        cpuSecondsPerGiB: med(results.map((r) => r.cpuSecondsPerGiB)),
        deliveryCpuSecondsPerGiB: f.mode === 'install' ? med(results.map((r) => r.deliveryCpuSecondsPerGiB!)) : undefined,
        rawMibPerSecond: med(results.map((r) => r.rawMibPerSecond)),
        deliveryMibPerSecond: f.mode === 'install' ? med(results.map((r) => r.deliveryMibPerSecond!)) : undefined,
        receivedOverStored: med(results.map((r) => r.receivedOverStored)),
        peakRssMb: med(results.map((r) => r.peakRssMb)),
        pageFaults: f.mode === 'install' ? med(results.map((r) => r.pageFaults!)) : undefined,
        targetDirectShare: f.mode === 'install' ? med(results.map((r) => r.targetDirectShare!)) : undefined,
      },
      allOk: results.every((r) => r.ok),
      nodesDetail: results,
    };
    if (f.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      const { nodesDetail, ...head } = summary;
      console.log(JSON.stringify(head));
      console.log('node          ok  secs   MiB/s  deliv MiB/s  cpu-s  cpu-s/GiB  deliv-s/GiB  rss MB  recv/stored  from peers  from frontend');
      for (const r of nodesDetail) {
        // prettier-ignore
        console.log(`${r.node.padEnd(13)} ${r.ok ? 'y' : 'N'}  ${r.seconds.toFixed(1).padStart(5)} ${r.rawMibPerSecond.toFixed(1).padStart(7)} ${(r.deliveryMibPerSecond ?? NaN).toFixed(1).padStart(12)} ${r.cpuSeconds.toFixed(2).padStart(6)} ${r.cpuSecondsPerGiB.toFixed(2).padStart(10)} ${(r.deliveryCpuSecondsPerGiB ?? NaN).toFixed(2).padStart(12)} ${r.peakRssMb.toFixed(0).padStart(7)} ${r.receivedOverStored.toFixed(3).padStart(12)} ${String(r.bytesFromPeers).padStart(11)} ${String(r.bytesFromFrontend).padStart(14)}`);
      }
    }
    if (f.cpuProf) {
      // Where each installer's main thread went (the profiles stay in the directory).
      for (const file of fs.readdirSync(f.cpuProf).filter((x) => x.endsWith('.cpuprofile'))) {
        say(`${file}:`);
        for (const line of formatProfileSummary(summariseCpuProfile(path.join(f.cpuProf, file), 15))) say(line);
      }
    }
    if (!summary.allOk) process.exitCode = 1;
  } finally {
    await fe?.stop();
    if (f.keep) say(`kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

const program = new Command('bench-node-path')
  .option('--nodes <n>', 'nodes installing at once', '1')
  .addOption(new Option('--method <m>', 'image method').choices(['torrent', 'http', 'multicast']).default('torrent'))
  .option('--image-mb <m>', 'raw image size in MiB', '512')
  .addOption(new Option('--data <kind>', 'image content').choices(DATA_KINDS).default('mixed'))
  .addOption(new Option('--mode <mode>', 'install: whole installer; proxy: the proxy read by curl').choices(['install', 'proxy']).default('install'))
  .option('--linger <s>', 'installer --linger', '1')
  .addOption(new Option('--runtime <r>', 'which build runs').choices(RUNTIMES).default('auto'))
  .addOption(new Option('--installer <form>', 'the installer as one bundled file, as the boot environment runs it, or as the module tree').choices(INSTALLER_FORMS).default('bundle'))
  .option('--json', 'print JSON')
  .option('--keep', 'keep the work folder')
  .option('--cpu-prof <dir>', 'write a V8 CPU profile of every installer or proxy into DIR, and print where each one spent its time')
  .option('--child-output <dir>', "save each installer's stdout and stderr in DIR (with --node-flags=--trace-opt: what V8 optimised, and how long each took)")
  .option('--node-flags <flags>', 'extra Node.js flags for every installer, e.g. --node-flags=--single-threaded-gc')
  .option('--floor', 'run no node: time, step by step, the work a swarm install of this image cannot avoid')
  .option('--block-size <bytes>', "multicast DATA payload per datagram, 512-8900 (the frontend's multicast.blockSize; default 1400, 8900 for jumbo frames); also used by --floor")
  .action((o: Flags) => run(o));
const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
program.parseAsync(argv, { from: 'user' }).catch((err: Error) => {
  process.stderr.write(`bench-node-path: ${err.message}\n`);
  process.exitCode = 1;
});
