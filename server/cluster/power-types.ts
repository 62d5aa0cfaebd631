/** What a power driver is and does (./power.ts builds them). */
import type { NodeRecord } from '../inventory/types.js';

export const POWER_DRIVERS = ['none', 'ipmi', 'redfish', 'ssh', 'command'] as const;
export type PowerDriverName = (typeof POWER_DRIVERS)[number];

export type PowerState = 'on' | 'off' | 'unknown';

/** What a reinstall needs of a driver. */
export interface PowerCycler {
  name: PowerDriverName;
  /** True when nothing is done and the admin must reboot the nodes. */
  manual: boolean;
  /** Reboots one node into a network boot (setting the next boot to PXE where the driver can). */
  cycle(node: NodeRecord): Promise<void>;
}

/** Everything `kickswarm power` does; drivers without a BMC reject what they cannot do. */
export interface PowerDriver extends PowerCycler {
  /** The node's power state as its BMC reports it. */
  status(node: NodeRecord): Promise<PowerState>;
  on(node: NodeRecord): Promise<void>;
  off(node: NodeRecord): Promise<void>;
  /** Releases connections the driver keeps (idempotent). */
  close?(): Promise<void>;
}
