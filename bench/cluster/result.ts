/**
 * What a run measured, as the `--json` object: per node (times from the
 * moment all installers were launched, bytes, CPU, verification), the
 * makespan against the lower bound, bytes by sender, CPU seconds, and the
 * machine it ran on.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { NodeRecord } from '../../server/inventory/types.js';
import { type Bound, TCP_GOODPUT_SHARE } from './bound.js';
import { sha256Prefix } from './image.js';
import type { Topology } from './netns.js';
import { fetchInNs } from './procs.js';
import type { BenchOptions } from './options.js';
import type { BenchNodeSpec, ImageMeta } from './setup.js';

export interface FrontendCounters {
  seederBytes: number;
  httpBytes: number;
  multicastBytes: number;
  multicastPayloadBytes: number;
  multicastChunksResent: number;
  /** Bytes (Ethernet frames) that left the frontend's interface, from tc. */
  frontendWireBytes: number;
  /** Bytes that left the nodes' interfaces, per node, from tc. */
  nodeWireBytes: number[];
  /** Packets the shaping queues dropped (overflow, plus netem's loss). */
  droppedPackets: number;
  /** Packets the nftables loss rule dropped (when the loss is made that way). */
  lossRuleDroppedPackets: number;
}

function nftDrops(t: Topology): number {
  if (t.lossBy !== 'nftables') return 0;
  const out = execFileSync('ip', ['netns', 'exec', t.switchNs, 'nft', 'list', 'chain', 'bridge', 'ksb', 'loss'], { encoding: 'utf8' });
  return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
}

function qdiscStats(ns: string, dev: string): { sent: number; dropped: number } {
  const out = execFileSync('tc', ['-n', ns, '-s', 'qdisc', 'show', 'dev', dev], { encoding: 'utf8' });
  let sent = 0;
  let dropped = 0;
  for (const m of out.matchAll(/qdisc (\w+) .*\n\s*Sent (\d+) bytes \d+ pkt \(dropped (\d+)/g)) {
    if (m[1] === 'tbf' || m[1] === 'netem') dropped += Number(m[3]);
    if (m[1] === 'tbf') sent = Number(m[2]);
  }
  return { sent, dropped };
}

/** Reads the frontend's byte counters (HTTP API and frisbee status) and the links' tc counters. */
export async function readCounters(t: Topology, url: string, auth: Record<string, string>): Promise<FrontendCounters> {
  const swarm = JSON.parse(await fetchInNs(t.frontend.ns, `${url}/api/v1/swarm`, auth)) as { images: { swarmBytesSent: number; httpBytesSent: number }[] };
  const frisbee = JSON.parse(await fetchInNs(t.frontend.ns, `${url}/frisbee/status?format=json`)) as {
    sessions: { bytesSent: number; payloadBytesSent?: number; chunksResent?: number }[];
  };
  const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((a, x) => a + (f(x) || 0), 0);
  const hosts = [t.frontend, ...t.nodes];
  return {
    seederBytes: sum(swarm.images, (i) => i.swarmBytesSent),
    httpBytes: sum(swarm.images, (i) => i.httpBytesSent),
    multicastBytes: sum(frisbee.sessions, (s) => s.bytesSent),
    multicastPayloadBytes: sum(frisbee.sessions, (s) => s.payloadBytesSent ?? 0),
    multicastChunksResent: sum(frisbee.sessions, (s) => s.chunksResent ?? 0),
    frontendWireBytes: qdiscStats(t.frontend.ns, 'eth0').sent,
    nodeWireBytes: t.nodes.map((n) => qdiscStats(n.ns, 'eth0').sent),
    droppedPackets: sum(hosts, (h) => qdiscStats(h.ns, 'eth0').dropped + qdiscStats(t.switchNs, h.port).dropped),
    lossRuleDroppedPackets: nftDrops(t),
  };
}

export interface ObservedNode {
  spec: BenchNodeSpec;
  record: NodeRecord | undefined;
  /** When the run first saw the node past `profile` (its kickstart read, image transfer starting). */
  firstActiveAt: number | undefined;
  /** The installer's CPU (user and system seconds), or null when it was not recorded. */
  cpu: { user: number; system: number } | null;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  output: string;
  logTail: string;
}

export interface Observed {
  options: BenchOptions;
  runtime: string;
  image: ImageMeta;
  bound: Bound;
  linkBytesPerSec: number;
  multicastRateBytesPerSec: number;
  launchedAt: number;
  endedAt: number;
  finished: 'done' | 'exited' | 'timeout';
  timeoutSeconds: number;
  frontendCpuSeconds: number;
  lossBy: string;
  /** Share of all CPUs' time that was busy from launch to the last node done (every process on the machine). */
  machineBusy: number;
  /** CPU seconds all CPUs were busy over the same time (USER_HZ 100). */
  machineBusySeconds: number;
  /** The same in the second before launch: other load on the machine. */
  machineBusyBefore: number;
  /** CPU seconds of the benchmark process itself from launch to the end (polling). */
  benchCpuSeconds: number;
  counters: FrontendCounters | undefined;
  cleanupOk: boolean;
  nodes: ObservedNode[];
  workDir: string | undefined;
}

export interface NodeResult {
  name: string;
  ip: string;
  state: string;
  sha256Match: boolean;
  bootAction: string;
  /** Seconds from launch to the node's first report (process start-up). */
  startSeconds: number | null;
  /** Seconds from launch until the run saw the node downloading (polled every 0.2 s). */
  transferStartSeconds: number | null;
  /** Seconds from launch to the node's `done` report: its completion time. */
  doneSeconds: number | null;
  bytesFromFrontend: number;
  bytesFromPeers: number;
  /** Bytes (frames) the node's interface sent, from tc. */
  wireBytesSent: number | null;
  cpuSeconds: number | null;
  /** The part of cpuSeconds spent in the kernel (the installer's system time). */
  systemSeconds: number | null;
  exitCode: number | null;
  reason?: string;
}

export type BenchResult = ReturnType<typeof buildResult>;

const r2 = (n: number) => Math.round(n * 100) / 100;

function machine() {
  return {
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

function nodeResult(n: ObservedNode, launchedAt: number, rawSize: number, sha256: string, wire: number | undefined): NodeResult {
  const ins = n.record?.install;
  const at = (iso: string | undefined) => (iso ? r2((Date.parse(iso) - launchedAt) / 1000) : null);
  const sha256Match = fs.existsSync(n.spec.target) && sha256Prefix(n.spec.target, rawSize) === sha256;
  return {
    name: n.spec.name,
    ip: n.spec.ip,
    state: ins?.state ?? 'none',
    sha256Match,
    bootAction: n.record?.bootAction ?? 'unknown',
    startSeconds: at(ins?.startedAt),
    transferStartSeconds: n.firstActiveAt === undefined ? null : r2((n.firstActiveAt - launchedAt) / 1000),
    doneSeconds: ins?.state === 'done' ? at(ins.updatedAt) : null,
    bytesFromFrontend: ins?.bytesFromFrontend ?? 0,
    bytesFromPeers: ins?.bytesFromPeers ?? 0,
    wireBytesSent: wire ?? null,
    cpuSeconds: n.cpu === null ? null : r2(n.cpu.user + n.cpu.system),
    systemSeconds: n.cpu === null ? null : r2(n.cpu.system),
    exitCode: n.exit.code,
    ...(ins?.state !== 'done' ? { reason: ins?.reason ?? (n.exit.signal ? `killed by ${n.exit.signal}` : n.logTail.trim().split('\n').pop()) } : {}),
  };
}

export function buildResult(ob: Observed) {
  const o = ob.options;
  const c = ob.counters;
  const nodes = ob.nodes.map((n, i) => nodeResult(n, ob.launchedAt, ob.image.rawSize, ob.image.sha256, c?.nodeWireBytes[i]));
  const allDone = nodes.every((n) => n.state === 'done' && n.doneSeconds !== null);
  const makespan = allDone ? Math.max(...nodes.map((n) => n.doneSeconds!)) : (ob.endedAt - ob.launchedAt) / 1000;
  const starts = nodes.map((n) => n.startSeconds).filter((s): s is number => s !== null);
  const xfer = nodes.map((n) => n.transferStartSeconds).filter((s): s is number => s !== null);
  const seederBytes = c?.seederBytes ?? 0;
  const frontendBytesSent = c ? c.seederBytes + c.httpBytes + c.multicastBytes : 0;
  const received = nodes.reduce((a, n) => a + n.bytesFromPeers, 0);
  const cpu = nodes.map((n) => n.cpuSeconds ?? 0);
  const installersCpu = cpu.reduce((a, b) => a + b, 0);
  const installersSystem = nodes.reduce((a, n) => a + (n.systemSeconds ?? 0), 0);
  const allVerified = nodes.every((n) => n.sha256Match);
  return {
    method: o.method,
    nodeCount: o.nodes,
    rate: o.rate,
    rateBitsPerSec: ob.linkBytesPerSec * 8,
    lossRate: o.loss,
    imageMb: o.imageMb,
    data: o.data,
    runtime: ob.runtime,
    imageBytes: ob.image.rawSize,
    /** F of the bound: the stored .ksimg size, the bytes every node must receive. */
    fileBytes: ob.image.storedSize,
    nodes,
    makespanSeconds: r2(makespan),
    lowerBoundSeconds: r2(ob.bound.seconds),
    ratio: r2(makespan / ob.bound.seconds),
    bound: { formula: ob.bound.formula, limitedBy: ob.bound.limitedBy, tcpGoodputShare: r2(TCP_GOODPUT_SHARE) },
    /** From the first node starting its transfer to the last node done: the makespan without process start-up. */
    transferMakespanSeconds: allDone && xfer.length ? r2(makespan - Math.min(...xfer)) : null,
    startSkewSeconds: starts.length ? r2(Math.max(...starts) - Math.min(...starts)) : null,
    lastStartSeconds: starts.length ? r2(Math.max(...starts)) : null,
    frontendBytesSent,
    frontendCopies: r2(frontendBytesSent / ob.image.storedSize),
    frontendBytes: c ? { seeder: c.seederBytes, http: c.httpBytes, multicast: c.multicastBytes, multicastPayload: c.multicastPayloadBytes } : null,
    peerBytesSent: Math.max(0, received - seederBytes),
    wire: c
      ? { frontendBytesSent: c.frontendWireBytes, nodesBytesSent: c.nodeWireBytes.reduce((a, b) => a + b, 0), droppedPackets: c.droppedPackets, lossRuleDroppedPackets: c.lossRuleDroppedPackets }
      : null,
    lossBy: ob.lossBy,
    multicast: o.method === 'multicast' ? { rateCapBytesPerSec: Math.round(ob.multicastRateBytesPerSec), blockSize: o.multicastBlockSize, chunksResent: c?.multicastChunksResent ?? null } : null,
    cpu: {
      frontendSeconds: r2(ob.frontendCpuSeconds),
      installersSeconds: r2(installersCpu),
      installerMaxSeconds: r2(Math.max(...cpu)),
      /** The installers' system time: the kernel's work charged to them (sockets, the simulated links' shaping and softirqs, page faults, file writes). */
      installersSystemSeconds: r2(installersSystem),
      machineBusyShare: r2(ob.machineBusy),
      machineBusyBeforeShare: r2(ob.machineBusyBefore),
      benchSeconds: r2(ob.benchCpuSeconds),
      /** Busy CPU seconds not in the frontend, installers or the benchmark: kernel work not charged to them, and other processes on the machine. */
      otherSeconds: r2(Math.max(0, ob.machineBusySeconds - ob.frontendCpuSeconds - installersCpu - ob.benchCpuSeconds)),
      /**
       * CPU seconds the frontend and the installers used, spread over all CPUs:
       * on this machine (every simulated node shares its CPUs) the run could
       * not have been shorter. A makespan near it is CPU-bound, not link-bound.
       */
      floorSeconds: r2((ob.frontendCpuSeconds + installersCpu) / os.cpus().length),
    },
    shaping: { burst: o.tbfBurst, latency: o.tbfLatency },
    finished: ob.finished,
    timeoutSeconds: ob.timeoutSeconds,
    allVerified,
    cleanupOk: ob.cleanupOk,
    ok: allDone && allVerified && nodes.every((n) => n.bootAction === 'os') && ob.cleanupOk,
    machine: machine(),
    startedAt: new Date(ob.launchedAt).toISOString(),
    ...(ob.workDir ? { workDir: ob.workDir } : {}),
  };
}
