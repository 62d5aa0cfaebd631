/** What one bench:cluster run is asked to do (parsed from the command line). */
import type { Method } from './bound.js';
import type { DataKind } from './image.js';
import type { InstallerForm, RuntimeChoice } from './runtime.js';

export interface BenchOptions {
  nodes: number;
  method: Method;
  /** tc rate of every link, e.g. `50mbit`. */
  rate: string;
  imageMb: number;
  /** Fraction of packets lost on the way into each host. */
  loss: number;
  data: DataKind;
  tbfBurst: string;
  tbfLatency: string;
  /** The multicast sender's cap as a tc rate (default: 95% of the link's frames). */
  multicastRate?: string;
  /** The frontend's multicast.blockSize: bytes of payload per DATA datagram. */
  multicastBlockSize: number;
  /** Installer `--linger`; undefined: linger until every node is done, then stop them. */
  linger?: number;
  timeoutSeconds?: number;
  runtime: RuntimeChoice;
  /** The installer as one bundled file (as the boot environment runs it) or as the runtime's module tree. */
  installer: InstallerForm;
  /** Profile the frontend and every installer (node --cpu-prof) into DIR/frontend and DIR/<node>. */
  cpuProf?: string;
  /** Extra Node.js flags for every installer (words split on spaces). */
  nodeFlags?: string;
  keep: boolean;
  say: (line: string) => void;
}
