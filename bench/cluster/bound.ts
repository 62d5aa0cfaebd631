/**
 * Link rates and the minimum distribution time of a file to N nodes.
 *
 * Kumar & Ross, "Peer-assisted file distribution: the minimum distribution
 * time" (HotWeb 2006): with a server upload rate u_s, peer upload rates u_i
 * and download rates d_i, no scheme delivers a file of F bytes to all N peers
 * faster than
 *
 *   T_min = max(F / u_s, F / d_min, N * F / (u_s + sum u_i))
 *
 * (and a fluid schedule reaches it). Client-server (plain HTTP, the server
 * sends every copy) cannot beat N * F / u_s; a loss-free multicast sends each
 * byte once, so F / rate.
 */
import { DATA_HEADER_SIZE } from '../../protocol/frisbee.js';

export const METHODS = ['torrent', 'multicast', 'http'] as const;
export type Method = (typeof METHODS)[number];

const UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/**
 * Bits per second of a tc-style rate (`50mbit`, `1gbit`, `800kbit`; decimal
 * multiples as tc uses them). Byte units such as tc's `mbps` are refused on
 * purpose: they read like megabits but mean megabytes.
 */
export function parseRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/i.exec(s.trim());
  if (!m) throw new Error(`rate ${JSON.stringify(s)}: want a number with bit, kbit, mbit or gbit (e.g. 50mbit)`);
  const bits = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!(bits >= 8000)) throw new Error(`rate ${s} is below 8kbit`);
  return bits;
}

/** A loss rate given as a fraction (`0.01`) or a percentage (`1%`), as a fraction in [0, 0.5]. */
export function parseLoss(s: string): number {
  const pct = s.trim().endsWith('%');
  const v = Number(pct ? s.trim().slice(0, -1) : s) / (pct ? 100 : 1);
  if (!Number.isFinite(v) || v < 0 || v > 0.5) throw new Error(`loss ${JSON.stringify(s)}: want a fraction 0..0.5 or a percentage like 1%`);
  return v;
}

export interface BoundInput {
  method: Method;
  nodes: number;
  /** Bytes every node must receive. */
  fileBytes: number;
  /** Bytes per second of every link, each direction (frontend and nodes alike). */
  linkBytesPerSec: number;
}

export interface Bound {
  seconds: number;
  /** Which term of the formula is the maximum, e.g. `F/u_s`. */
  limitedBy: string;
  formula: string;
}

/** The lower bound on the makespan for `method` with every link at the same rate. */
export function lowerBound(b: BoundInput): Bound {
  const { nodes: n, fileBytes: f, linkBytesPerSec: u } = b;
  if (b.method === 'http') return { seconds: (n * f) / u, limitedBy: 'N*F/u_s', formula: 'N*F/u_s' };
  if (b.method === 'multicast') return { seconds: f / u, limitedBy: 'F/rate', formula: 'F/rate' };
  const terms: [string, number][] = [
    ['F/u_s', f / u],
    ['F/d_min', f / u],
    ['N*F/(u_s+sum u_i)', (n * f) / (u + n * u)],
  ];
  const [limitedBy, seconds] = terms.reduce((a, t) => (t[1] > a[1] ? t : a));
  return { seconds, limitedBy, formula: 'max(F/u_s, F/d_min, N*F/(u_s+sum u_i))' };
}

/**
 * Share of a link's rate left for TCP payload with a 1500-byte MTU: tbf
 * counts Ethernet frames (1514 bytes) while a full segment carries 1448
 * bytes (TCP timestamps on). Reported next to the bound; not applied to it.
 */
export const TCP_GOODPUT_SHARE = 1448 / 1514;

/**
 * The share of a link's bytes that is multicast datagram (UDP payload: a DATA
 * block of `block` bytes and its DATA header). A datagram goes out as one
 * IPv4 packet or, above a 1500-byte MTU, as fragments of at most 1480 bytes;
 * with UDP's 8 bytes, and IPv4's 20 and Ethernet's 14 per packet.
 */
export function multicastDatagramShare(block: number): number {
  const datagram = block + DATA_HEADER_SIZE;
  const ipPayload = datagram + 8;
  return datagram / (ipPayload + Math.ceil(ipPayload / 1480) * (20 + 14));
}
