/**
 * A simulated cluster in a data dir: N `compute` nodes with boot action
 * `install`, each with its own MAC and its own loopback IPv4 address. Linux
 * routes all of 127.0.0.0/8 to `lo`, so every node address can be bound as a
 * source address without any setup.
 */
import { ensureDataDir } from '../../server/datadir.js';
import { Inventory } from '../../server/inventory/store.js';
import { type Ipv4, type Mac, type NodeName, intToIpv4, ipv4ToInt } from '../../protocol/node.js';

export interface BenchNode {
  name: NodeName;
  mac: Mac;
  ip: Ipv4;
}

/** Hosts per /24: .1 to .250, so no node has a .0 or .255 address. */
const PER_SUBNET = 250;

/**
 * The i-th node (0-based): IP 127.1.0.1 onwards, 250 per /24 (10,000 nodes end
 * in 127.1.39.250; more spill into 127.2.x.x and beyond), MAC 52:54:00 plus i,
 * name compute-<rack>-<rank> with 250 nodes a rack.
 */
export function benchNode(i: number, firstIp = '127.1.0.1'): BenchNode {
  if (!Number.isInteger(i) || i < 0 || i >= 0x1000000) throw new RangeError(`node index out of range: ${i}`);
  const rack = Math.floor(i / PER_SUBNET);
  const rank = i % PER_SUBNET;
  const ip = intToIpv4(ipv4ToInt(firstIp as Ipv4) + rack * 256 + rank);
  const mac = ['52', '54', '00', (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':') as Mac;
  return { name: `compute-${rack}-${rank}` as NodeName, mac, ip };
}

/**
 * Creates the data dir (shipped profiles and templates included) and registers
 * `count` nodes through the Inventory (one transaction per node, as the CLI
 * does), all at boot action `install`. Returns the nodes and the seconds it took.
 */
export function seedCluster(dataDir: string, count: number): { nodes: BenchNode[]; seconds: number } {
  const dirs = ensureDataDir(dataDir);
  const inventory = new Inventory(dirs.db);
  const t0 = process.hrtime.bigint();
  const nodes: BenchNode[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const n = benchNode(i);
      const rack = Math.floor(i / PER_SUBNET);
      inventory.addNode({ ...n, appliance: 'compute', rack, rank: i % PER_SUBNET, bootAction: 'install' });
      nodes.push(n);
    }
  } finally {
    inventory.close();
  }
  return { nodes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}
