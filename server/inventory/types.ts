/** Inventory records as the rest of the frontend sees them. */
import type { BootAction, InstallState, Ipv4, Mac, NodeName } from '../../protocol/node.js';

export interface InstallProgress {
  state: InstallState;
  /** Bytes of the image received so far and its total size, when known. */
  bytesDone?: number;
  bytesTotal?: number;
  /** Bytes per second over the last report interval. */
  rate?: number;
  /** Bytes received from the frontend (HTTP or its seeder) and from peers. */
  bytesFromFrontend?: number;
  bytesFromPeers?: number;
  /** Why the install failed (state `failed`). */
  reason?: string;
  /** ISO time of the install's start (its first report) and of the latest report. */
  startedAt: string;
  updatedAt: string;
  /** The exact image version this node was last installed with (kept across later installs until one succeeds). */
  image?: InstalledImage;
}

/** An image version written to a node by a successful install. */
export interface InstalledImage {
  /** `NAME@N`. */
  ref: string;
  sha256: string;
  /** When the install finished (ISO 8601). */
  at: string;
}

export interface NodeRecord {
  name: NodeName;
  mac: Mac;
  ip: Ipv4;
  uuid: string | null;
  appliance: string;
  rack: number | null;
  rank: number | null;
  attrs: Record<string, string>;
  bootAction: BootAction;
  install: InstallProgress | null;
  createdAt: string;
  updatedAt: string;
}

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
}

/** Where the running `kickswarm serve` of this data dir answers (so CLI renders match what it serves). */
export interface RunningFrontend {
  url: string;
  tftpServer: string;
  httpPort: number;
  tftpPort: number;
  pid: number;
  startedAt: string;
}
