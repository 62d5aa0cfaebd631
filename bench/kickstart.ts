/**
 * kickstart.cgi benchmark: how many kickstarts per second one frontend renders
 * with N nodes in its inventory, every request coming from the requesting
 * node's own source address (the frontend identifies nodes by source IP).
 *
 *   node --import tsx bench/kickstart.ts --nodes 10000 --seconds 10 [--concurrency C]
 *       [--connection close|keep-alive] [--send-mac] [--warmup S] [--runs R] [--cpu-prof DIR] [--json]
 *
 * The frontend (`kickswarm serve`) runs in its own process; this process seeds
 * the inventory (N `compute` nodes at boot action install, 127.1.0.1 onwards,
 * 250 per /24) and generates the load (see lib/http-load.ts for the two
 * connection modes; `close` is what installing nodes do). 503s are honoured
 * and counted apart. Reports 200s per second, their p50/p90/p99 latency, the
 * frontend's CPU seconds and RSS, and the load generator's CPU (both share the
 * machine). `--cpu-prof DIR` profiles the frontend and prints where its time
 * went during the measured window. `--runs R` repeats everything R times
 * (fresh data dir and frontend each time) and reports the medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { KICKSTART_PATH, PROVISIONING_MAC_HEADER_PREFIX } from '../protocol/api.js';
import { benchNode, seedCluster } from './lib/seed.js';
import { formatProfileSummary, newestProfileIn, type ProfileSummary, summariseCpuProfile } from './lib/cpuprofile.js';
import { startFrontendProcess } from './lib/frontend-process.js';
import { SESSION_HEADER } from '../protocol/session.js';
import { dataDirPaths } from '../server/datadir.js';
import { Inventory } from '../server/inventory/store.js';
import { CLEAN_OTHER_CORES, CpuWindow, type CpuReading, counterDelta, sampleBusyCores, tcpExtCounters } from './lib/proc.js';
import { type ConnectionMode, runLoad } from './lib/http-load.js';
import { keyValues, latencySummary, median, nonNegativeNumber, positiveInt, positiveNumber, round } from './lib/stats.js';

/** The goal of issue 6: renders per second with 10,000 nodes on 2 cores. */
const GOAL_RENDERS_PER_SECOND = 2000;

interface Options {
  nodes: number;
  seconds: number;
  warmup: number;
  concurrency: number;
  connection: ConnectionMode;
  runs: number;
  sendMac: boolean;
  cpuProf?: string;
  json: boolean;
}

interface RunResult {
  rendersPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  busy503: number;
  retryAfterSeconds: number | null;
  deferred: number;
  otherStatus: Record<string, number>;
  errors: number;
  errorSamples: string[];
  distinctNodesServed: number;
  kickstartBytes: number;
  frontendCpuSeconds: number;
  frontendCpuCores: number;
  frontendCpuMsPerRender: number;
  frontendRssMb: number;
  frontendPeakRssMb: number;
  loadGeneratorCpuSeconds: number;
  /** Host cores busy in the window, and what neither the frontend nor this process used (should be ~0). */
  hostBusyCores: number;
  otherProcessesCores: number;
  /** Host cores busy in the second before the run. */
  hostBusyBeforeCores: number;
  /** Nothing else used more than CLEAN_OTHER_CORES during the window. */
  clean: boolean;
  /** Host-wide TCP accept-queue drops over the whole run (warm-up included): SYNs the kernel dropped, clients resend them after 1 s, 3 s, ... */
  tcpListenDrops: number;
  seedSeconds: number;
  profile?: ProfileSummary;
}

async function runOnce(o: Options, index: number): Promise<RunResult> {
  const dir = mkdtempSync(join(os.tmpdir(), 'kickswarm-bench-ks-'));
  const profDir = o.cpuProf ? join(o.cpuProf, `run-${index + 1}`) : undefined;
  try {
    const seed = seedCluster(join(dir, 'data'), o.nodes);
    const sessions = sessionTokens(join(dir, 'data'), o.nodes);
    const busyBefore = await sampleBusyCores();
    if (busyBefore > 0.25) process.stderr.write(`bench-kickstart: warning: ${busyBefore.toFixed(2)} cores already busy before the run; the numbers will be skewed\n`);
    const fe = await startFrontendProcess({
      dataDir: join(dir, 'data'),
      nodeFlags: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    });
    try {
      await sanityCheck(fe.httpPort, sessions);
      const meter = new CpuWindow(fe.pid);
      const tcp0 = tcpExtCounters();
      let m: CpuReading | undefined;
      const load = await runLoad({
        host: '127.0.0.1',
        port: fe.httpPort,
        path: KICKSTART_PATH,
        address: (i) => benchNode(i).ip,
        headers: (i) => ({
          [SESSION_HEADER]: sessions[i] ?? '',
          ...(o.sendMac ? { [`${PROVISIONING_MAC_HEADER_PREFIX}0`]: `eth0 ${benchNode(i).mac}` } : {}),
        }),
        nodes: o.nodes,
        concurrency: o.concurrency,
        seconds: o.seconds,
        warmupSeconds: o.warmup,
        connection: o.connection,
        onWindow: (edge) => {
          if (edge === 'start') meter.start();
          else m = meter.end();
        },
      });
      const rss = fe.rssMb();
      const tcp = counterDelta(tcp0, tcpExtCounters());
      await fe.stop();
      if (!m) throw new Error('the measured window never ended');
      const cpu = m.watched.user + m.watched.system;
      const ra = load.retryAfterSeconds;
      const result: RunResult = {
        rendersPerSecond: round(load.ok / load.seconds, 1),
        latencyMs: mapValues(latencySummary(load.okLatenciesMs), (v) => round(v, 2)),
        busy503: load.busy,
        retryAfterSeconds: ra.length ? median(ra) : null,
        deferred: load.deferred,
        otherStatus: load.otherStatus,
        errors: load.errors,
        errorSamples: load.errorSamples,
        distinctNodesServed: load.distinctNodesServed,
        kickstartBytes: load.ok ? Math.round(load.okBytes / load.ok) : 0,
        frontendCpuSeconds: round(cpu),
        frontendCpuCores: round(cpu / load.seconds),
        frontendCpuMsPerRender: load.ok ? round((cpu * 1000) / load.ok, 3) : 0,
        frontendRssMb: round(rss.now, 1),
        frontendPeakRssMb: round(rss.peak, 1),
        loadGeneratorCpuSeconds: round(m.selfCpuSeconds),
        hostBusyCores: round(m.host.busy),
        otherProcessesCores: round(m.host.otherProcesses),
        hostBusyBeforeCores: round(busyBefore),
        clean: m.host.otherProcesses <= CLEAN_OTHER_CORES,
        tcpListenDrops: tcp.ListenDrops ?? 0,
        seedSeconds: round(seed.seconds),
      };
      if (profDir) {
        const file = newestProfileIn(profDir);
        if (file) result.profile = summariseCpuProfile(file, 25, m.monotonicUs);
      }
      return result;
    } finally {
      await fe.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each node's install session token, as its boot config carries it (read from the data dir). */
function sessionTokens(dataDir: string, nodes: number): string[] {
  const inv = new Inventory(dataDirPaths(dataDir).db, { readonly: true });
  try {
    return Array.from({ length: nodes }, (_, i) => inv.session(benchNode(i).name)?.token ?? '');
  } finally {
    inv.close();
  }
}

/** One request from node 0 must be a 200, or nothing below means anything. */
async function sanityCheck(port: number, sessions: string[]): Promise<void> {
  const r = await runLoad({
    host: '127.0.0.1',
    port,
    path: KICKSTART_PATH,
    address: () => benchNode(0).ip,
    headers: () => ({ [SESSION_HEADER]: sessions[0] ?? '' }),
    nodes: 1,
    concurrency: 1,
    seconds: 0.05,
    warmupSeconds: 0,
    connection: 'close',
  });
  if (r.ok === 0) throw new Error(`kickstart.cgi did not answer 200 for node 0 (${JSON.stringify({ other: r.otherStatus, errors: r.errorSamples })})`);
}

function mapValues<T extends Record<string, number>>(o: T, f: (v: number) => number): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)])) as T;
}

function medians(runs: RunResult[]) {
  const m = (f: (r: RunResult) => number) => median(runs.map(f));
  return {
    rendersPerSecond: m((r) => r.rendersPerSecond),
    latencyMs: { p50: m((r) => r.latencyMs.p50), p90: m((r) => r.latencyMs.p90), p99: m((r) => r.latencyMs.p99), max: m((r) => r.latencyMs.max) },
    busy503: m((r) => r.busy503),
    errors: m((r) => r.errors),
    frontendCpuCores: m((r) => r.frontendCpuCores),
    frontendCpuMsPerRender: m((r) => r.frontendCpuMsPerRender),
    frontendPeakRssMb: m((r) => r.frontendPeakRssMb),
    loadGeneratorCpuSeconds: m((r) => r.loadGeneratorCpuSeconds),
  };
}

async function main(o: Options): Promise<void> {
  const runs: RunResult[] = [];
  for (let i = 0; i < o.runs; i++) {
    const r = await runOnce(o, i);
    runs.push(r);
    if (!o.json) printRun(r, i, o);
  }
  const med = medians(runs);
  const bad = runs.some((r) => r.errors > 0 || Object.keys(r.otherStatus).length > 0);
  const summary = {
    benchmark: 'kickstart',
    nodes: o.nodes,
    seconds: o.seconds,
    warmupSeconds: o.warmup,
    concurrency: o.concurrency,
    connection: o.connection,
    sendMac: o.sendMac,
    cpus: os.cpus().length,
    goalRendersPerSecond: GOAL_RENDERS_PER_SECOND,
    goalMet: med.rendersPerSecond >= GOAL_RENDERS_PER_SECOND,
    cleanRuns: runs.filter((r) => r.clean).length,
    median: med,
    runs,
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else if (o.runs > 1) {
    const { latencyMs: l, ...rest } = med;
    console.log(`median of ${o.runs} runs: ${keyValues(rest)} latencyMs(p50/p90/p99/max)=${l.p50}/${l.p90}/${l.p99}/${l.max}`);
  }
  if (!o.json) {
    const clean = summary.cleanRuns === o.runs ? '' : `; only ${summary.cleanRuns} of ${o.runs} runs clean`;
    console.log(`goal >= ${GOAL_RENDERS_PER_SECOND} renders/s: ${summary.goalMet ? 'met' : 'MISSED'} (median ${med.rendersPerSecond}/s on ${summary.cpus} CPUs${clean})`);
  }
  if (bad) process.exitCode = 1;
}

function printRun(r: RunResult, i: number, o: Options): void {
  const l = r.latencyMs;
  console.log(
    `run ${i + 1}: ${o.nodes} nodes, ${o.concurrency} concurrent, connection ${o.connection}${o.sendMac ? ' + MAC header' : ''}, ${o.seconds} s: ` +
      `${r.rendersPerSecond} renders/s, latency p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} max ${l.max} ms, ` +
      `503s ${r.busy503}, errors ${r.errors}, TCP listen drops ${r.tcpListenDrops}${Object.keys(r.otherStatus).length ? `, other ${JSON.stringify(r.otherStatus)}` : ''}`,
  );
  console.log(
    `  frontend: ${r.frontendCpuSeconds} CPU s (${r.frontendCpuCores} cores, ${r.frontendCpuMsPerRender} ms/render), RSS ${r.frontendRssMb} MiB (peak ${r.frontendPeakRssMb}); ` +
      `load generator ${r.loadGeneratorCpuSeconds} CPU s; host ${r.hostBusyCores} cores busy (others ${r.otherProcessesCores}, before ${r.hostBusyBeforeCores}); ${r.distinctNodesServed} distinct nodes served, ${r.kickstartBytes} B/kickstart; inventory seeded in ${r.seedSeconds} s`,
  );
  if (!r.clean) console.log(`  NOT CLEAN: other processes used ${r.otherProcessesCores} cores during the window`);
  if (r.errorSamples.length) console.log(`  errors: ${r.errorSamples.join('; ')}`);
  if (r.profile) for (const line of formatProfileSummary(r.profile)) console.log(`  ${line}`);
}

const program = new Command('bench-kickstart')
  .description("kickstart.cgi renders per second with N nodes, each request from its node's own address")
  .option('--nodes <n>', 'nodes in the inventory', '10000')
  .option('--seconds <s>', 'measured seconds', '10')
  .option('--warmup <s>', 'seconds of load before measuring', '2')
  .option('--concurrency <c>', 'requests in flight', '64')
  .option('--connection <mode>', 'close (a new connection per request, as installers do) or keep-alive', 'close')
  .option('--send-mac', "also announce each node's MAC (X-RHN-Provisioning-MAC-0), as kickswarm-install --mac does")
  .option('--runs <r>', 'repeat the whole run R times and report medians', '1')
  .option('--cpu-prof <dir>', 'profile the frontend (node --cpu-prof) into DIR and summarise the measured window')
  .option('--json', 'print JSON')
  .action(async (f: Record<string, string | boolean | undefined>) => {
    const connection = String(f.connection);
    if (connection !== 'close' && connection !== 'keep-alive') throw new Error(`--connection must be close or keep-alive, not ${JSON.stringify(connection)}`);
    await main({
      nodes: positiveInt('--nodes', String(f.nodes), 1_000_000),
      seconds: positiveNumber('--seconds', String(f.seconds)),
      warmup: nonNegativeNumber('--warmup', String(f.warmup)),
      concurrency: positiveInt('--concurrency', String(f.concurrency), 10_000),
      connection,
      runs: positiveInt('--runs', String(f.runs), 100),
      sendMac: Boolean(f.sendMac),
      cpuProf: typeof f.cpuProf === 'string' ? resolve(f.cpuProf) : undefined,
      json: Boolean(f.json),
    });
  });

const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
program.parseAsync(argv, { from: 'user' }).catch((err: Error) => {
  process.stderr.write(`bench-kickstart: ${err.message}\n`);
  process.exitCode = 1;
});
