/** Inventory records as the rest of the frontend sees them; the node and its progress have their home in protocol/. */
import type { BootAction, Ipv4, Mac, NodeName } from '../../protocol/node.js';

export type { InstallProgress, InstalledImage } from '../../protocol/install.js';
export type { NodeRecord } from '../../protocol/api.js';

export interface NewNode {
  name: NodeName;
  mac: Mac;
  ip: Ipv4;
  uuid?: string | null;
  appliance: string;
  rack?: number | null;
  rank?: number | null;
  attrs?: Record<string, string>;
  bootAction?: BootAction;
  /** Awaiting approval (discovery); default false. */
  pending?: boolean;
}

/** Which nodes a bulk command applies to. */
export type NodeSelector = { all: true } | { appliance: string } | { names: NodeName[] };

export interface NodeEvent {
  id: number;
  node: NodeName;
  at: string;
  /** e.g. `pxe`, `kickstart`, `boot`, `install`, `discover`, `capture`. */
  kind: string;
  message: string;
  data?: Record<string, unknown>;
}

/** An active insert-ethers style discovery session. */
export interface DiscoverySession {
  appliance: string;
  rack: number;
  firstIp: Ipv4;
  startedAt: string;
  /** Register discovered nodes as approved at once (`--auto-approve`); default: they wait for `node approve`. */
  autoApprove?: boolean;
  /** Most nodes awaiting approval at once (auto-approve: most nodes this session registers); default DISCOVERY_DEFAULTS. */
  maxPending?: number;
  /** Most registrations per minute; default DISCOVERY_DEFAULTS. */
  perMinute?: number;
}

/** Limits of a discovery session when it does not set them. */
export const DISCOVERY_DEFAULTS = { maxPending: 64, perMinute: 30 } as const;

/** Where the running `kickswarm serve` of this data dir answers (so CLI renders match what it serves). */
export interface RunningFrontend {
  url: string;
  tftpServer: string;
  httpPort: number;
  tftpPort: number;
  pid: number;
  startedAt: string;
}
