/**
 * Address pools for multicast sessions: a range of IPv4 multicast groups
 * (`239.255.77.1-239.255.77.254`, or one address) and a range of UDP ports
 * (`7700-7799`, or one port). `PairPool` hands out group:port pairs so that no
 * two live sessions share one, preferring a pair whose group and port are both
 * unused so that sessions differ in both.
 */
import { InvalidInputError } from '../../protocol/errors.js';

export const DEFAULT_GROUP_POOL = '239.255.77.1-239.255.77.254';
export const DEFAULT_PORT_POOL = '7700-7799';
const MAX_POOL = 65_536;

function ipv4ToInt(s: string, what: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m || m.slice(1).some((p) => Number(p) > 255)) throw new InvalidInputError(`${what}: ${JSON.stringify(s)} is not an IPv4 address`);
  return m.slice(1).reduce((n, p) => n * 256 + Number(p), 0);
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses `A-B` or `A` into the list of multicast groups (224.0.0.0/4, 224.0.0.x excluded). */
export function parseGroupPool(spec: string): string[] {
  const [a, b = a] = spec.split('-');
  const lo = ipv4ToInt(a!, 'multicast group pool');
  const hi = ipv4ToInt(b!, 'multicast group pool');
  if (hi < lo) throw new InvalidInputError(`multicast group pool ${spec}: range is backwards`);
  if (hi - lo + 1 > MAX_POOL) throw new InvalidInputError(`multicast group pool ${spec}: more than ${MAX_POOL} addresses`);
  const first = ipv4ToInt('224.0.1.0', '');
  const last = ipv4ToInt('239.255.255.255', '');
  if (lo < first || hi > last) throw new InvalidInputError(`multicast group pool ${spec}: must lie in 224.0.1.0-239.255.255.255 (239.x.x.x is for local use)`);
  const out: string[] = [];
  for (let n = lo; n <= hi; n++) out.push(intToIpv4(n));
  return out;
}

/** Parses `A-B` or `A` into the list of UDP ports (1024..65535). */
export function parsePortPool(spec: string): number[] {
  const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(spec);
  if (!m) throw new InvalidInputError(`multicast port pool ${JSON.stringify(spec)}: want PORT or FIRST-LAST`);
  const lo = Number(m[1]);
  const hi = Number(m[2] ?? m[1]);
  if (lo < 1024 || hi > 65535 || hi < lo) throw new InvalidInputError(`multicast port pool ${spec}: ports must be 1024..65535, low to high`);
  const out: number[] = [];
  for (let p = lo; p <= hi; p++) out.push(p);
  return out;
}

export interface GroupPort {
  group: string;
  port: number;
}

export class PairPool {
  private readonly used = new Set<string>();

  constructor(
    readonly groups: string[],
    readonly ports: number[],
  ) {}

  /** A free pair, or undefined when every pair is taken. */
  take(): GroupPort | undefined {
    const usedGroups = new Set<string>();
    const usedPorts = new Set<number>();
    for (const k of this.used) {
      const [g, p] = k.split(':');
      usedGroups.add(g!);
      usedPorts.add(Number(p));
    }
    const g = this.groups.find((x) => !usedGroups.has(x));
    const p = this.ports.find((x) => !usedPorts.has(x));
    if (g !== undefined && p !== undefined) return this.mark(g, p);
    for (const group of this.groups) {
      for (const port of this.ports) if (!this.used.has(`${group}:${port}`)) return this.mark(group, port);
    }
    return undefined;
  }

  private mark(group: string, port: number): GroupPort {
    this.used.add(`${group}:${port}`);
    return { group, port };
  }

  release(p: GroupPort): void {
    this.used.delete(`${p.group}:${p.port}`);
  }
}
