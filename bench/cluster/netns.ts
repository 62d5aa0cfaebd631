/**
 * A cluster's network on one machine: one network namespace per host (the
 * frontend and every node) and one for a switch (a Linux bridge), each host
 * joined to the switch by a veth pair. Nothing is made in the root namespace,
 * so the machine's own interfaces and routes are never touched.
 *
 * Every link is shaped in both directions with `tc tbf` (egress of the host's
 * `eth0` = its upload, egress of the switch port = its download). With a loss
 * rate, packets are dropped at random on the way out of the switch only, so a
 * packet between any two hosts meets the loss exactly once: by `netem loss` in
 * front of each port's tbf, or, on kernels built without netem
 * (CONFIG_NET_SCH_NETEM), by one nftables rule on the bridge's forward hook
 * (`numgen random`, applied to each port's copy of a flooded multicast
 * datagram separately).
 *
 * Names: namespaces `<prefix>sw`, `<prefix>fe`, `<prefix>n<i>`; the prefix is
 * `ksb-<pid>-`, so leftovers of a crashed run can be told from a live one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** Namespaces whose name starts like this belong to the benchmark. */
export const PREFIX_RE = /^ksb-(\d+)-/;

export interface LinkShape {
  /** tc rate, e.g. `50mbit`. */
  rate: string;
  /** tbf bucket size, e.g. `32kbit`. */
  burst: string;
  /** tbf queue length as time, e.g. `50ms`. */
  latency: string;
  /** Fraction of packets dropped by netem on the way into each host (0 = no netem). */
  loss: number;
}

export interface Host {
  ns: string;
  ip: string;
  /** The switch-side veth of this host's link. */
  port: string;
}

export interface Topology {
  prefix: string;
  switchNs: string;
  frontend: Host;
  nodes: Host[];
  /** How packet loss is made (none without a loss rate). */
  lossBy: 'none' | 'netem' | 'nftables';
}

/** The frontend's address; nodes are 10.77.1.1 onwards. */
export const FRONTEND_IP = '10.77.0.1';
const MAX_NODES = 254;

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tc(ns: string, args: string[]): void {
  execFileSync('tc', ['-n', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Throws a clear error unless this process is root and `ip netns` and `tc` work. */
export function requireNetns(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('must run as root: it builds network namespaces, veth pairs and qdiscs (try: sudo npm run bench:cluster -- ...)');
  }
  try {
    ip(['netns', 'list']);
  } catch (e) {
    throw new Error(`\`ip netns\` is not available (${(e as Error).message.split('\n')[0]}); install iproute2 and run on Linux with network namespaces`);
  }
  try {
    execFileSync('tc', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('`tc` is not available; install iproute2');
  }
}

/** Names of existing network namespaces. */
export function listNamespaces(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Pids of the processes inside a namespace. */
export function namespacePids(ns: string): number[] {
  try {
    return ip(['netns', 'pids', ns])
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills the processes inside each namespace (SIGKILL, by pid), waits up to a
 * second for them to go, then deletes the namespace, which removes its veths,
 * bridge and qdiscs. Never throws; returns the namespaces it could not delete.
 */
export function deleteNamespaces(names: string[]): string[] {
  const pids = names.flatMap(namespacePids);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const until = Date.now() + 1000;
  while (pids.some(alive) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  const failed: string[] = [];
  for (const ns of names) {
    try {
      ip(['netns', 'delete', ns]);
    } catch {
      if (listNamespaces().includes(ns)) failed.push(ns);
    }
  }
  return failed;
}

/**
 * Deletes namespaces of earlier benchmark runs whose process is gone (a
 * crash or SIGKILL), with the processes still inside them. Namespaces of a run
 * that is still alive are left alone. Returns what it deleted.
 */
export function cleanLeftovers(): string[] {
  const stale = listNamespaces().filter((n) => {
    const m = PREFIX_RE.exec(n);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  });
  if (stale.length) deleteNamespaces(stale);
  return stale;
}

function shape(ns: string, dev: string, s: LinkShape, netem: boolean): void {
  const tbf = ['tbf', 'rate', s.rate, 'burst', s.burst, 'latency', s.latency];
  if (netem) {
    tc(ns, ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'netem', 'loss', `${(s.loss * 100).toFixed(4)}%`]);
    tc(ns, ['qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', ...tbf]);
  } else {
    tc(ns, ['qdisc', 'add', 'dev', dev, 'root', ...tbf]);
  }
}

/** Whether this kernel has netem: tries it on the switch's loopback. */
function netemAvailable(switchNs: string): boolean {
  try {
    tc(switchNs, ['qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'loss', '0%']);
    tc(switchNs, ['qdisc', 'del', 'dev', 'lo', 'root']);
    return true;
  } catch {
    return false;
  }
}

/** Drops the fraction `loss` of the frames the bridge forwards (each port's copy on its own). */
function nftablesLoss(switchNs: string, loss: number): void {
  const rules = [
    'table bridge ksb {',
    '  chain loss {',
    '    type filter hook forward priority 0; policy accept;',
    `    numgen random mod 1000000 < ${Math.round(loss * 1e6)} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
  try {
    execFileSync('ip', ['netns', 'exec', switchNs, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT' || /No such file|exec of "nft" failed/.test(String((e as { stderr?: Buffer }).stderr ?? ''))
        ? 'nft is not installed (Debian: apt-get install nftables)'
        : String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim();
    throw new Error(`packet loss needs netem (not in this kernel) or nftables: ${why}`);
  }
}

function addHost(t: { switchNs: string; netem: boolean }, ns: string, address: string, port: string, s: LinkShape): Host {
  ip(['netns', 'add', ns]);
  ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  ip(['-n', t.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  ip(['-n', t.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
  ip(['-n', ns, 'addr', 'add', `${address}/16`, 'dev', 'eth0']);
  ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  shape(ns, 'eth0', s, false);
  shape(t.switchNs, port, s, t.netem);
  return { ns, ip: address, port };
}

/**
 * Builds the switch, the frontend's host and `nodes` node hosts, every link
 * shaped to `s`. On any failure it deletes what it made and rethrows.
 * `onMade` hears each namespace as soon as it exists (for cleanup on a signal).
 */
export function buildTopology(prefix: string, nodes: number, s: LinkShape, onMade: (ns: string) => void = () => undefined): Topology {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new Error(`--nodes must be from 1 to ${MAX_NODES}`);
  const switchNs = `${prefix}sw`;
  const made: string[] = [];
  const track = (ns: string) => {
    made.push(ns);
    onMade(ns);
  };
  try {
    ip(['netns', 'add', switchNs]);
    track(switchNs);
    ip(['-n', switchNs, 'link', 'set', 'lo', 'up']);
    ip(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    ip(['-n', switchNs, 'link', 'set', 'br0', 'up']);
    let lossBy: Topology['lossBy'] = 'none';
    if (s.loss > 0) lossBy = netemAvailable(switchNs) ? 'netem' : 'nftables';
    if (lossBy === 'nftables') nftablesLoss(switchNs, s.loss);
    const t = { switchNs, netem: lossBy === 'netem' };
    track(`${prefix}fe`);
    const frontend = addHost(t, `${prefix}fe`, FRONTEND_IP, 'pfe', s);
    const hosts: Host[] = [];
    for (let i = 0; i < nodes; i++) {
      track(`${prefix}n${i}`);
      hosts.push(addHost(t, `${prefix}n${i}`, `10.77.1.${i + 1}`, `p${i}`, s));
    }
    return { prefix, switchNs, frontend, nodes: hosts, lossBy };
  } catch (e) {
    deleteNamespaces(made.filter((n) => listNamespaces().includes(n)));
    throw e;
  }
}

/** Every namespace of a topology (switch last, so hosts' veths go first). */
export function topologyNamespaces(t: Topology): string[] {
  return [t.frontend.ns, ...t.nodes.map((n) => n.ns), t.switchNs];
}

/** True when the kernel keeps a namespace of this name (a cleanup check). */
export function namespaceExists(ns: string): boolean {
  return fs.existsSync(`/run/netns/${ns}`) || listNamespaces().includes(ns);
}
