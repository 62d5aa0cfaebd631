/**
 * One benchmark run: a data dir made with the CLI, the namespaces and shaped
 * links, `kickswarm serve` in the frontend's namespace, `kickswarm-install
 * run` in every node's namespace (all launched at once), then the numbers
 * (see result.ts) and a teardown that leaves nothing behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { dataDirPaths, PACKAGE_ROOT } from '../../server/datadir.js';
import { Inventory } from '../../server/inventory/store.js';
import type { NodeName } from '../../protocol/node.js';
import { lowerBound, multicastDatagramShare, parseRate } from './bound.js';
import { buildTopology, cleanLeftovers, deleteNamespaces, type LinkShape, namespaceExists, topologyNamespaces } from './netns.js';
import { childPids, cpuSeconds, fetchInNs, machineCpuTicks, type NsProcess, readCpuSplit, signalGroup, signalPid, spawnInNs, stopGroup, withCpuAccounting } from './procs.js';
import { Resources, cleanLeftoverDirs } from './resources.js';
import { type BenchResult, buildResult, type Observed, readCounters } from './result.js';
import { resolveRuntime, type Runtime, withInstallerBundle, withInstallerFlags } from './runtime.js';
import { prepareData } from './setup.js';
import type { BenchOptions } from './options.js';

export type { BenchOptions } from './options.js';

const HTTP_PORT = 8080;
const TFTP_PORT = 6969;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitForBanner(fe: NsProcess, file: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (fs.existsSync(file) && /^kickswarm serving /m.test(fs.readFileSync(file, 'utf8'))) return;
    if (!fe.running()) throw new Error(`kickswarm serve exited before serving (see ${file.replace(/\.out$/, '.log')})`);
    await sleep(100);
  }
  throw new Error(`kickswarm serve did not start within ${timeoutMs / 1000} s`);
}

export async function runBench(o: BenchOptions, res: Resources): Promise<BenchResult> {
  const say = o.say;
  const stale = [...cleanLeftovers(), ...cleanLeftoverDirs()];
  if (stale.length) say(`removed leftovers of earlier runs: ${stale.join(', ')}`);
  const base = resolveRuntime(o.runtime);
  const runtime = withCpuProfiles(withInstallerFlags(o.installer === 'bundle' ? await withInstallerBundle(base) : base, o.nodeFlags), o.cpuProf);
  say(`runtime: ${runtime.note}`);
  res.keepDirs = o.keep;
  const work = res.makeWorkDir();
  const logs = path.join(work, 'logs');
  fs.mkdirSync(logs);
  const linkBytesPerSec = parseRate(o.rate) / 8;
  const multicastRate = o.multicastRate ? parseRate(o.multicastRate) / 8 : linkBytesPerSec * 0.95 * multicastDatagramShare(o.multicastBlockSize);
  const nodeIps = Array.from({ length: o.nodes }, (_, i) => `10.77.1.${i + 1}`);
  const frontendIp = '10.77.0.1';
  const prepared = await prepareData({
    work,
    runtime,
    method: o.method,
    imageMb: o.imageMb,
    data: o.data,
    frontendIp,
    nodeIps,
    multicastRateBytesPerSec: multicastRate,
    multicastBlockSize: o.multicastBlockSize,
    say,
  });
  const fileBytes = prepared.image.storedSize;
  const bound = lowerBound({ method: o.method, nodes: o.nodes, fileBytes, linkBytesPerSec });
  const timeoutSeconds = o.timeoutSeconds ?? Math.ceil(120 + 3 * ((o.nodes * fileBytes) / linkBytesPerSec));

  const shape: LinkShape = { rate: o.rate, burst: o.tbfBurst, latency: o.tbfLatency, loss: o.loss };
  const topo = buildTopology(res.prefix, o.nodes, shape, (ns) => res.addNamespace(ns));
  if (topo.frontend.ip !== frontendIp || topo.nodes.some((n, i) => n.ip !== nodeIps[i])) throw new Error('topology addresses differ from the registered ones');
  say(
    `network: ${o.nodes + 2} namespaces (${res.prefix}*), every link ${o.rate} each way (tbf burst ${o.tbfBurst}, latency ${o.tbfLatency})${o.loss ? `, ${(o.loss * 100).toFixed(2)}% loss into every host (${topo.lossBy})` : ''}`,
  );

  const url = `http://${frontendIp}:${HTTP_PORT}`;
  const env = { ...process.env, KICKSWARM_LOG_LEVEL: 'info' };
  const fe = spawnInNs(
    topo.frontend.ns,
    [...runtime.server, '--data-dir', prepared.dataDir, 'serve', '--listen', frontendIp, '--http-port', String(HTTP_PORT), '--tftp-port', String(TFTP_PORT), '--log-level', 'info'],
    {
      stdout: path.join(logs, 'frontend.out'),
      stderr: path.join(logs, 'frontend.log'),
      cwd: PACKAGE_ROOT,
      env,
    },
  );
  res.addGroup(fe.pid);
  await waitForBanner(fe, path.join(logs, 'frontend.out'), 60_000);
  const token = fs.readFileSync(dataDirPaths(prepared.dataDir).tokenFile, 'utf8').trim();
  const auth = { authorization: `Bearer ${token}` };
  if (o.method === 'torrent') {
    for (let i = 0; ; i++) {
      const swarm = JSON.parse(await fetchInNs(topo.frontend.ns, `${url}/api/v1/swarm`, auth)) as { images: { image: string }[] };
      // Seeded as its exact version (bench@1).
      if (swarm.images.some((s) => s.image === 'bench' || s.image.startsWith('bench@'))) break;
      if (i > 100) throw new Error('the frontend never started seeding the image');
      await sleep(200);
    }
  }
  say(`frontend ${url} (pid ${fe.pid}); launching ${o.nodes} installer(s)`);

  const inventory = new Inventory(dataDirPaths(prepared.dataDir).db, { readonly: true });
  const nodes = prepared.nodes.map((n, i) => ({
    spec: n,
    host: topo.nodes[i]!,
    cpuFile: path.join(logs, `${n.name}.cpu`),
    out: path.join(logs, `${n.name}.log`),
    log: path.join(logs, `${n.name}.err`),
  }));
  const lingerArg = String(o.linger ?? 3600);
  const idle0 = machineCpuTicks();
  await sleep(1000);
  const idle1 = machineCpuTicks();
  const busyBefore = (idle1.busy - idle0.busy) / Math.max(1, idle1.total - idle0.total);
  if (busyBefore > 0.2) say(`warning: the CPUs were ${Math.round(busyBefore * 100)}% busy in the second before launch (other processes); times will suffer`);
  const benchCpu0 = process.cpuUsage();
  const feCpu0 = cpuSeconds(fe.pid) ?? 0;
  const machine0 = machineCpuTicks();
  const launchedAt = Date.now();
  const procs = nodes.map((n) => {
    // prettier-ignore
    const argv = [
      // The node's install session token, as its boot config would carry it (the harness reads it from the data dir).
      ...runtime.installer, 'run', '--frontend', url, '--mac', n.spec.mac, '--session', inventory.session(n.spec.name as NodeName)?.token ?? '', '--target', n.spec.target, '--no-reboot',
      '--linger', lingerArg, '--local-address', n.spec.ip, '--deadline', String(timeoutSeconds), '--json',
      ...(o.method === 'multicast' ? ['--multicast-interface', n.spec.ip] : []),
    ];
    const p = spawnInNs(n.host.ns, withCpuAccounting(argv, n.cpuFile), { stdout: n.out, stderr: n.log, cwd: PACKAGE_ROOT, env });
    res.addGroup(p.pid);
    return p;
  });

  const seen = new Map<string, number>();
  let finished: 'done' | 'exited' | 'timeout' = 'timeout';
  let lastLine = 0;
  while (Date.now() - launchedAt < timeoutSeconds * 1000) {
    const recs = inventory.listNodes({ appliance: 'bench' });
    for (const r of recs) if (r.install && r.install.state !== 'profile' && !seen.has(r.name)) seen.set(r.name, Date.now());
    const ended = recs.filter((r) => r.install?.state === 'done' || r.install?.state === 'failed').length;
    if (ended === o.nodes) {
      finished = 'done';
      break;
    }
    if (procs.every((p) => !p.running())) {
      finished = 'exited';
      break;
    }
    if (Date.now() - lastLine >= 5000) {
      lastLine = Date.now();
      const pct = recs.map((r) => (r.install?.bytesTotal ? (100 * (r.install.bytesDone ?? 0)) / r.install.bytesTotal : 0));
      say(`[+${((Date.now() - launchedAt) / 1000).toFixed(0)}s] ${ended}/${o.nodes} finished; mean progress ${(pct.reduce((a, b) => a + b, 0) / pct.length).toFixed(0)}%`);
    }
    await sleep(200);
  }
  const endedAt = Date.now();
  const feCpu = (cpuSeconds(fe.pid) ?? feCpu0) - feCpu0;
  const machine1 = machineCpuTicks();
  const benchCpu = process.cpuUsage(benchCpu0);
  if (finished === 'timeout') say(`timed out after ${timeoutSeconds} s`);
  const counters = await readCounters(topo, url, auth).catch((e: Error) => {
    say(`could not read the frontend's counters: ${e.message}`);
    return undefined;
  });

  // Lingering installers (torrent) are told to stop; bash then writes their CPU seconds.
  if (o.linger === undefined || finished !== 'done') for (const p of procs) for (const c of childPids(p.pid)) signalPid(c, 'SIGTERM');
  const graceUntil = Date.now() + 15_000 + (o.linger ?? 0) * 1000;
  while (procs.some((p) => p.running()) && Date.now() < graceUntil) await sleep(100);
  for (const p of procs) if (p.running()) signalGroup(p, 'SIGKILL');
  const exits = await Promise.all(procs.map((p) => p.exited));
  for (const p of procs) res.dropGroup(p.pid);

  const records = inventory.listNodes({ appliance: 'bench' });
  inventory.close();
  await stopGroup(fe, 10_000);
  res.dropGroup(fe.pid);
  const names = topologyNamespaces(topo);
  const left = deleteNamespaces(names);
  res.dropNamespaces(names.filter((n) => !left.includes(n)));
  const cleanupOk = left.length === 0 && names.every((n) => !namespaceExists(n));
  say(cleanupOk ? `removed ${names.length} namespaces` : `could not remove namespaces: ${left.join(', ')}`);

  const observed: Observed = {
    options: o,
    runtime: o.installer === 'bundle' ? `${runtime.kind}, installer bundled` : runtime.kind,
    image: prepared.image,
    bound,
    linkBytesPerSec,
    multicastRateBytesPerSec: multicastRate,
    launchedAt,
    endedAt,
    finished,
    timeoutSeconds,
    frontendCpuSeconds: feCpu,
    lossBy: topo.lossBy,
    machineBusy: (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total),
    machineBusySeconds: (machine1.busy - machine0.busy) / 100,
    machineBusyBefore: busyBefore,
    benchCpuSeconds: (benchCpu.user + benchCpu.system) / 1e6,
    counters,
    cleanupOk,
    nodes: nodes.map((n, i) => ({
      spec: n.spec,
      record: records.find((r) => r.name === n.spec.name),
      firstActiveAt: seen.get(n.spec.name),
      cpu: readCpuSplit(n.cpuFile),
      exit: exits[i]!,
      output: fs.existsSync(n.out) ? fs.readFileSync(n.out, 'utf8') : '',
      logTail: [n.out, n.log].map((f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-600) : '')).join(''),
    })),
    workDir: o.keep ? work : undefined,
  };
  return buildResult(observed);
}

/** `runtime` with node's --cpu-prof into DIR/frontend (server) and DIR/installers (every installer; one file per process). */
function withCpuProfiles(runtime: Runtime, dir: string | undefined): Runtime {
  if (!dir) return runtime;
  const flags = (sub: string) => ['--cpu-prof', `--cpu-prof-dir=${path.join(path.resolve(dir), sub)}`];
  const [node, ...server] = runtime.server;
  const [node2, ...installer] = runtime.installer;
  return { ...runtime, server: [node!, ...flags('frontend'), ...server], installer: [node2!, ...flags('installers'), ...installer] };
}
