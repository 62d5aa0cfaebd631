/**
 * PXE boot storm: N nodes power on together and each fetches, over TFTP from
 * one frontend, its `pxelinux.cfg/01-<mac>` and then the kernel that config
 * names, checking the kernel's SHA-256.
 *
 *   node --import tsx bench/pxe-storm.ts --clients 500 --kernel-mb 20
 *       [--client raw|npm] [--timeout-ms T] [--retries R] [--runs R] [--cpu-prof DIR]
 *       [--tftp-recv-buffer BYTES] [--json]
 *
 * The frontend (`kickswarm serve`) runs in its own process with N `compute`
 * nodes at boot action install and a random `kickswarm/vmlinuz` in its
 * tftpboot dir. `--client raw` (default) is lib/tftp-client.ts, which behaves
 * like PXE firmware (lock-step, blksize 1468, tsize) and sends from each
 * node's own loopback address (127.1.0.1 onwards); `--client npm` is the npm
 * `tftp` client (windowsize 1, all from 127.0.0.1). Reports failures and why,
 * the time until the last node has its kernel, per-node p50/p99, the aggregate
 * MB/s, resends, and the frontend's CPU seconds and RSS. `--tftp-recv-buffer`
 * sets the frontend's `tftpRecvBufferBytes` (default 4 MiB; 0 = the system
 * default, as before the frontend set it) through the data dir's kickswarm.yaml.
 */
import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { macToPxeName } from '../protocol/node.js';
import { type BenchNode, seedCluster } from './lib/seed.js';
import { formatProfileSummary, newestProfileIn, type ProfileSummary, summariseCpuProfile } from './lib/cpuprofile.js';
import { startFrontendProcess } from './lib/frontend-process.js';
import { CLEAN_OTHER_CORES, CpuWindow, counterDelta, sampleBusyCores, udpCounters } from './lib/proc.js';
import { keyValues, latencySummary, median, positiveInt, positiveNumber, round } from './lib/stats.js';
import { TftpGetError, type TftpGetResult, tftpGet } from './lib/tftp-client.js';
import { npmTftpGet } from './lib/tftp-npm.js';

const MiB = 1024 * 1024;

function nonNegativeInt(flag: string, v: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`${flag} must be a whole number 0..${max}, not ${JSON.stringify(v)}`);
  return n;
}

interface Options {
  clients: number;
  kernelMb: number;
  client: 'raw' | 'npm';
  timeoutMs: number;
  retries: number;
  runs: number;
  /** The frontend's `tftpRecvBufferBytes`; undefined = its default. */
  tftpRecvBuffer?: number;
  cpuProf?: string;
  json: boolean;
}

interface ClientResult {
  node: string;
  ip: string;
  ok: boolean;
  error?: string;
  /** `config` or `kernel`, and how: `timeout`, `server-error`, `protocol`, `socket`, `verify`, `no kernel line`. */
  failedAt?: string;
  configMs?: number;
  kernelSeconds?: number;
  totalSeconds: number;
  resends: number;
  duplicates: number;
  longestStallMs: number;
}

interface StormResult {
  failures: number;
  failureReasons: Record<string, number>;
  secondsUntilAllDone: number;
  perClientSeconds: { p50: number; p90: number; p99: number; max: number };
  configMs: { p50: number; p99: number };
  aggregateMBps: number;
  resends: number;
  clientsThatResent: number;
  duplicatesReceived: number;
  longestStallMs: number;
  frontendCpuSeconds: number;
  frontendSystemCpuSeconds: number;
  frontendCpuCores: number;
  frontendPeakRssMb: number;
  clientCpuSeconds: number;
  /** Host-wide UDP counters over the storm (/proc/net/snmp), e.g. RcvbufErrors = datagrams dropped on full socket buffers. */
  udp: Record<string, number>;
  /**
   * Host CPU over the storm in cores: busy (all but idle), softirq, steal, and
   * otherProcesses = busy minus the frontend and this process (anything else
   * running skews the numbers); busyBefore = cores busy in the second before.
   */
  hostCores: { busy: number; softirq: number; steal: number; otherProcesses: number; busyBefore: number };
  /** Nothing else used more than CLEAN_OTHER_CORES during the storm. */
  clean: boolean;
  profile?: ProfileSummary;
  clients: ClientResult[];
}

function get(o: Options, tftpPort: number, file: string, localAddress: string, onData?: (b: Buffer) => void): Promise<TftpGetResult> {
  const common = { host: '127.0.0.1', port: tftpPort, file, blksize: 1468, retries: o.retries, onData };
  return o.client === 'raw' ? tftpGet({ ...common, localAddress, timeoutMs: o.timeoutMs }) : npmTftpGet({ ...common, timeoutMs: o.timeoutMs });
}

/** One node: its config, then the kernel the config names, hashed as it arrives. */
async function bootOne(o: Options, port: number, node: BenchNode, kernelSha: string): Promise<ClientResult> {
  const t0 = process.hrtime.bigint();
  const secs = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const r: ClientResult = { node: node.name, ip: node.ip, ok: false, totalSeconds: 0, resends: 0, duplicates: 0, longestStallMs: 0 };
  const account = (g: { resends: number; duplicates?: number; longestStallMs?: number }) => {
    r.resends += g.resends;
    r.duplicates += g.duplicates ?? 0;
    r.longestStallMs = Math.max(r.longestStallMs, g.longestStallMs ?? 0);
  };
  let stage = 'config';
  let kind = 'other';
  try {
    const chunks: Buffer[] = [];
    account(await get(o, port, `pxelinux.cfg/${macToPxeName(node.mac)}`, node.ip, (b) => chunks.push(Buffer.from(b))));
    r.configMs = round(secs() * 1000, 1);
    const config = Buffer.concat(chunks).toString('utf8');
    const kernel = /^\s*kernel\s+(\S+)/m.exec(config)?.[1];
    if (!kernel) {
      kind = 'no kernel line';
      throw new Error(`config names no kernel: ${JSON.stringify(config.slice(0, 120))}`);
    }
    stage = 'kernel';
    const t1 = secs();
    const hash = crypto.createHash('sha256');
    account(await get(o, port, kernel, node.ip, (b) => hash.update(b)));
    r.kernelSeconds = round(secs() - t1, 3);
    if (hash.digest('hex') !== kernelSha) {
      kind = 'verify';
      throw new Error('kernel SHA-256 mismatch');
    }
    r.ok = true;
  } catch (e) {
    if (e instanceof TftpGetError) account(e.partial);
    r.failedAt = `${stage}: ${e instanceof TftpGetError ? e.kind : kind}`;
    r.error = (e as Error).message;
  }
  r.totalSeconds = round(secs(), 3);
  return r;
}

async function runOnce(o: Options, index: number): Promise<StormResult> {
  const dir = mkdtempSync(join(os.tmpdir(), 'kickswarm-bench-pxe-'));
  try {
    const data = join(dir, 'data');
    const { nodes } = seedCluster(data, o.clients);
    const kernelBytes = crypto.randomBytes(Math.round(o.kernelMb * MiB));
    const kernelSha = crypto.createHash('sha256').update(kernelBytes).digest('hex');
    mkdirSync(join(data, 'tftpboot/kickswarm'), { recursive: true });
    writeFileSync(join(data, 'tftpboot/kickswarm/vmlinuz'), kernelBytes);
    // The npm client sends every node's requests from 127.0.0.1: one address, so lift the per-address transfer cap for it.
    const yaml = [
      ...(o.tftpRecvBuffer !== undefined ? [`tftpRecvBufferBytes: ${o.tftpRecvBuffer}`] : []),
      ...(o.client === 'npm' ? [`tftpMaxTransfersPerClient: ${Math.max(8, o.clients)}`, `tftpMaxTransfers: ${Math.max(1000, o.clients)}`] : []),
    ];
    if (yaml.length) writeFileSync(join(data, 'kickswarm.yaml'), `${yaml.join('\n')}\n`);
    const busyBefore = await sampleBusyCores();
    if (busyBefore > 0.25) process.stderr.write(`bench-pxe-storm: warning: ${busyBefore.toFixed(2)} cores already busy before the storm; the numbers will be skewed\n`);
    const profDir = o.cpuProf ? join(o.cpuProf, `run-${index + 1}`) : undefined;
    const fe = await startFrontendProcess({
      dataDir: data,
      nodeFlags: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    });
    try {
      const meter = new CpuWindow(fe.pid);
      const udp0 = udpCounters();
      meter.start();
      const clients = await Promise.all(nodes.map((n) => bootOne(o, fe.tftpPort, n, kernelSha)));
      const m = meter.end();
      const udp = counterDelta(udp0, udpCounters());
      const wall = m.seconds;
      const cpu = m.watched.user + m.watched.system;
      const rss = fe.rssMb();
      await fe.stop();
      const profFile = profDir ? newestProfileIn(profDir) : undefined;
      const ok = clients.filter((c) => c.ok);
      const reasons: Record<string, number> = {};
      for (const c of clients) if (!c.ok) reasons[c.failedAt!] = (reasons[c.failedAt!] ?? 0) + 1;
      const per = latencySummary(ok.map((c) => c.totalSeconds));
      const cfg = latencySummary(ok.map((c) => c.configMs!));
      return {
        failures: clients.length - ok.length,
        failureReasons: reasons,
        secondsUntilAllDone: round(Math.max(...clients.map((c) => c.totalSeconds))),
        perClientSeconds: { p50: round(per.p50), p90: round(per.p90), p99: round(per.p99), max: round(per.max) },
        configMs: { p50: round(cfg.p50, 1), p99: round(cfg.p99, 1) },
        aggregateMBps: round((ok.length * kernelBytes.length) / 1e6 / wall, 1),
        resends: clients.reduce((n, c) => n + c.resends, 0),
        clientsThatResent: clients.filter((c) => c.resends > 0).length,
        duplicatesReceived: clients.reduce((n, c) => n + c.duplicates, 0),
        longestStallMs: Math.max(...clients.map((c) => c.longestStallMs)),
        frontendCpuSeconds: round(cpu),
        frontendSystemCpuSeconds: round(m.watched.system),
        frontendCpuCores: round(m.watched.cores),
        frontendPeakRssMb: round(rss.peak, 1),
        clientCpuSeconds: round(m.selfCpuSeconds),
        udp: { RcvbufErrors: udp.RcvbufErrors ?? 0, SndbufErrors: udp.SndbufErrors ?? 0, InErrors: udp.InErrors ?? 0, NoPorts: udp.NoPorts ?? 0 },
        hostCores: {
          busy: round(m.host.busy),
          softirq: round(m.host.softirq),
          steal: round(m.host.steal),
          otherProcesses: round(m.host.otherProcesses),
          busyBefore: round(busyBefore),
        },
        clean: m.host.otherProcesses <= CLEAN_OTHER_CORES,
        profile: profFile ? summariseCpuProfile(profFile, 25, m.monotonicUs) : undefined,
        clients,
      };
    } finally {
      await fe.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function printRun(r: StormResult, i: number, o: Options): void {
  const p = r.perClientSeconds;
  console.log(
    `run ${i + 1}: ${o.clients} clients (${o.client}), ${o.kernelMb} MiB kernel: failures ${r.failures}${r.failures ? ` ${JSON.stringify(r.failureReasons)}` : ''}, ` +
      `all done in ${r.secondsUntilAllDone} s, per client p50 ${p.p50} p90 ${p.p90} p99 ${p.p99} max ${p.max} s, config p50 ${r.configMs.p50} p99 ${r.configMs.p99} ms, ${r.aggregateMBps} MB/s`,
  );
  console.log(
    `  resends ${r.resends} (by ${r.clientsThatResent} clients), duplicate blocks ${r.duplicatesReceived}, longest stall ${r.longestStallMs} ms; ` +
      `frontend ${r.frontendCpuSeconds} CPU s (${r.frontendSystemCpuSeconds} system; ${r.frontendCpuCores} cores), peak RSS ${r.frontendPeakRssMb} MiB; clients ${r.clientCpuSeconds} CPU s; ` +
      `UDP ${keyValues(r.udp)}; host cores ${keyValues(r.hostCores)}`,
  );
  if (!r.clean) console.log(`  NOT CLEAN: other processes used ${r.hostCores.otherProcesses} cores during the storm`);
  if (r.profile) for (const line of formatProfileSummary(r.profile)) console.log(`  ${line}`);
  for (const c of r.clients.filter((x) => !x.ok).slice(0, 10)) console.log(`  FAILED ${c.node} ${c.ip} after ${c.totalSeconds} s: ${c.error}`);
}

async function main(o: Options): Promise<void> {
  const runs: StormResult[] = [];
  for (let i = 0; i < o.runs; i++) {
    const r = await runOnce(o, i);
    runs.push(r);
    if (!o.json) printRun(r, i, o);
  }
  const m = (f: (r: StormResult) => number) => median(runs.map(f));
  const med = {
    failures: m((r) => r.failures),
    secondsUntilAllDone: m((r) => r.secondsUntilAllDone),
    perClientP50Seconds: m((r) => r.perClientSeconds.p50),
    perClientP99Seconds: m((r) => r.perClientSeconds.p99),
    aggregateMBps: m((r) => r.aggregateMBps),
    resends: m((r) => r.resends),
    frontendCpuSeconds: m((r) => r.frontendCpuSeconds),
    frontendCpuCores: m((r) => r.frontendCpuCores),
    frontendPeakRssMb: m((r) => r.frontendPeakRssMb),
    clientCpuSeconds: m((r) => r.clientCpuSeconds),
  };
  const totalFailures = runs.reduce((n, r) => n + r.failures, 0);
  if (o.json) {
    const summary = {
      benchmark: 'pxe-storm',
      clients: o.clients,
      kernelMb: o.kernelMb,
      client: o.client,
      tftpRecvBuffer: o.tftpRecvBuffer ?? null,
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      cpus: os.cpus().length,
      cleanRuns: runs.filter((r) => r.clean).length,
      median: med,
      totalFailures,
      runs,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    if (o.runs > 1) console.log(`median of ${o.runs} runs: ${keyValues(med)}`);
    console.log(`goal zero failures: ${totalFailures === 0 ? 'met' : `MISSED (${totalFailures} in ${o.runs} run(s))`}`);
  }
  if (totalFailures > 0) process.exitCode = 1;
}

/** The benchmark's options: flag, help, default. */
const OPTIONS: [string, string, string?][] = [
  ['--clients <n>', 'simultaneous PXE clients (= nodes in the inventory)', '500'],
  ['--kernel-mb <m>', 'kernel size in MiB', '20'],
  ['--client <kind>', 'raw (PXE-like, own source address per node) or npm (the npm tftp client)', 'raw'],
  ['--timeout-ms <t>', 'client silence before its first resend (raw: doubles up to 8 s; npm: fixed, and sent to the server)', '1000'],
  ['--retries <r>', 'resends in a row without progress before a client gives up', '5'],
  ['--runs <r>', 'repeat the whole storm R times and report medians', '1'],
  ['--tftp-recv-buffer <bytes>', "the frontend's tftpRecvBufferBytes: receive buffer of its TFTP listening socket (default 4 MiB; 0 = the system default; capped by net.core.rmem_max)"],
  ['--cpu-prof <dir>', 'profile the frontend (node --cpu-prof) into DIR and summarise the storm'],
  ['--json', 'print JSON (every client included)'],
];

const program = new Command('bench-pxe-storm').description('N nodes fetch their pxelinux config and a kernel over TFTP at the same moment');
for (const [flag, help, value] of OPTIONS) program.option(flag, help, value);
program.action(async (f: Record<string, string | boolean | undefined>) => {
  const client = String(f.client);
  if (client !== 'raw' && client !== 'npm') throw new Error(`--client must be raw or npm, not ${JSON.stringify(client)}`);
  await main({
    clients: positiveInt('--clients', String(f.clients), 60_000),
    kernelMb: positiveNumber('--kernel-mb', String(f.kernelMb)),
    client,
    timeoutMs: positiveInt('--timeout-ms', String(f.timeoutMs), 60_000),
    retries: positiveInt('--retries', String(f.retries), 100),
    runs: positiveInt('--runs', String(f.runs), 100),
    tftpRecvBuffer: f.tftpRecvBuffer === undefined ? undefined : nonNegativeInt('--tftp-recv-buffer', String(f.tftpRecvBuffer), 1024 ** 3),
    cpuProf: typeof f.cpuProf === 'string' ? resolve(f.cpuProf) : undefined,
    json: Boolean(f.json),
  });
});

const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
program.parseAsync(argv, { from: 'user' }).catch((err: Error) => {
  process.stderr.write(`bench-pxe-storm: ${err.message}\n`);
  process.exitCode = 1;
});
