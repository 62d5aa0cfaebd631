/** Readings from Linux /proc: a process's CPU time and memory, the kernel's UDP counters. */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux port in use). */
const USER_HZ = 100;

/** User and system CPU seconds of a live process, all threads (fields 14 and 15 of /proc/<pid>/stat). */
export function processCpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return { user: Number(f[11]) / USER_HZ, system: Number(f[12]) / USER_HZ };
}

/** user + system CPU seconds of a live process, all threads. */
export function processCpuSeconds(pid: number): number {
  const t = processCpuTimes(pid);
  return t.user + t.system;
}

/** VmRSS and VmHWM (peak) of a live process, in MiB. */
export function processRssMb(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** The counters of one protocol line pair (`Udp:`, `TcpExt:`, ...) of /proc/net/snmp or /proc/net/netstat. */
function protocolCounters(file: string, prefix: string): Record<string, number> {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${prefix}: `));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1) ?? [];
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

/**
 * The host's UDP counters (/proc/net/snmp `Udp:`), e.g. `RcvbufErrors`:
 * datagrams dropped because a socket's receive buffer was full. Host-wide:
 * take a difference over a run on an otherwise quiet machine.
 */
export function udpCounters(): Record<string, number> {
  return protocolCounters('/proc/net/snmp', 'Udp');
}

/**
 * The host's extended TCP counters (/proc/net/netstat `TcpExt:`), e.g.
 * `ListenOverflows`/`ListenDrops`: connection attempts dropped because a
 * listening socket's accept queue was full. Host-wide, like udpCounters().
 */
export function tcpExtCounters(): Record<string, number> {
  return protocolCounters('/proc/net/netstat', 'TcpExt');
}

/** `after - before` for every counter. */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
}

/** Seconds the whole host spent per state (first line of /proc/stat: user, system, idle, softirq, steal, ...). */
export function hostCpuTimes(): Record<string, number> {
  const names = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
  return Object.fromEntries(names.map((n, i) => [n, Number(f[i] ?? 0) / USER_HZ]));
}

/** Cores the host kept busy (everything but idle and iowait) between two hostCpuTimes() readings. */
export function busyCores(before: Record<string, number>, after: Record<string, number>, seconds: number): number {
  const d = counterDelta(before, after);
  const busy = Object.entries(d).reduce((n, [k, v]) => (k === 'idle' || k === 'iowait' ? n : n + v), 0);
  return busy / seconds;
}

/** Cores busy on the host over the next `ms` milliseconds (to see whether something else is running). */
export async function sampleBusyCores(ms = 1000): Promise<number> {
  const before = hostCpuTimes();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, ms));
  return busyCores(before, hostCpuTimes(), Number(process.hrtime.bigint() - t0) / 1e9);
}

/**
 * Cores other processes may use during a run before it no longer counts as a
 * measurement of this machine (kernel threads and loopback softirq that are
 * not billed to either process stay well below it).
 */
export const CLEAN_OTHER_CORES = 0.2;

/** What a CpuWindow saw between start() and end(). */
export interface CpuReading {
  seconds: number;
  /** The watched process (the frontend). */
  watched: { user: number; system: number; cores: number };
  /** This process (the load generator), all threads. */
  selfCpuSeconds: number;
  /** Host cores busy, of which softirq and steal, and what neither process used. */
  host: { busy: number; softirq: number; steal: number; otherProcesses: number };
  /** The window on the system monotonic clock, microseconds (to cut a CPU profile). */
  monotonicUs: { start: number; end: number };
}

/** CPU of one watched process, of this process and of the host over a window. */
export class CpuWindow {
  private t0 = 0n;
  private watched0 = { user: 0, system: 0 };
  private self0: NodeJS.CpuUsage = { user: 0, system: 0 };
  private host0: Record<string, number> = {};

  constructor(private readonly pid: number) {}

  start(): void {
    this.t0 = process.hrtime.bigint();
    this.watched0 = processCpuTimes(this.pid);
    this.self0 = process.cpuUsage();
    this.host0 = hostCpuTimes();
  }

  end(): CpuReading {
    const t1 = process.hrtime.bigint();
    const seconds = Number(t1 - this.t0) / 1e9;
    const w = processCpuTimes(this.pid);
    const self = process.cpuUsage(this.self0);
    const host1 = hostCpuTimes();
    const watched = { user: w.user - this.watched0.user, system: w.system - this.watched0.system, cores: 0 };
    watched.cores = (watched.user + watched.system) / seconds;
    const selfCpuSeconds = (self.user + self.system) / 1e6;
    const d = counterDelta(this.host0, host1);
    const busy = busyCores(this.host0, host1, seconds);
    return {
      seconds,
      watched,
      selfCpuSeconds,
      host: { busy, softirq: (d.softirq ?? 0) / seconds, steal: (d.steal ?? 0) / seconds, otherProcesses: busy - watched.cores - selfCpuSeconds / seconds },
      monotonicUs: { start: Number(this.t0 / 1000n), end: Number(t1 / 1000n) },
    };
  }
}
