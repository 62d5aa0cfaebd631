/**
 * The one decision every transport asks: "what does this node get now?".
 * TFTP (pxelinux.cfg names) and HTTP (kickstart.cgi, setPxeboot.cgi) identify
 * the requester from what they have (MAC, source IP, UUID) and act on the answer;
 * none of them looks at boot actions or discovery on its own.
 */
import type { Ipv4, Mac } from '../../protocol/node.js';
import type { Inventory } from '../inventory/store.js';
import type { NodeRecord } from '../inventory/types.js';
import type { Logger } from '../log.js';
import { DiscoveryLimit } from './discovery-limit.js';

export interface BootRequest {
  /** MAC the node claims (PXE filename, X-RHN-Provisioning-MAC-n). */
  mac?: Mac;
  /** Where the request came from. */
  ip?: Ipv4;
  /** SMBIOS UUID (pxelinux.cfg/<uuid>). */
  uuid?: string;
  /** Which transport asked, for the event history: `tftp`, `kickstart`, ... */
  via: string;
}

export type BootDecision =
  /** Not in the inventory and discovery is off: nothing to serve. */
  | { kind: 'unknown'; lookedUp: string }
  /** The MAC is registered, but to a node with another IP than the requester's. */
  | { kind: 'mismatch'; node: NodeRecord; requesterIp: Ipv4 }
  /** A known node (possibly registered just now by discovery) and its boot action. */
  | { kind: 'node'; node: NodeRecord; discovered: boolean };

export interface BootPolicyOptions {
  /** Called when discovery registers a node (the console line of `discover`). */
  onDiscovered?: (node: NodeRecord) => void;
}

export class BootPolicy {
  private readonly discoveryLimit = new DiscoveryLimit();

  constructor(
    private readonly inventory: Inventory,
    private readonly log: Logger,
    private readonly opts: BootPolicyOptions = {},
  ) {}

  /**
   * Identifies the node: by UUID when given (and only by it), else by MAC, else
   * by source IP. An unknown MAC is registered when a discovery session is
   * active and its limits allow (./discovery-limit.ts); it awaits approval
   * unless the session auto-approves. A MAC whose node is registered with another IP is a `mismatch`
   * unless the request has no source IP to compare.
   */
  decide(req: BootRequest): BootDecision {
    if (req.uuid) {
      const n = this.inventory.findByUuid(req.uuid);
      return n ? { kind: 'node', node: n, discovered: false } : { kind: 'unknown', lookedUp: `UUID ${req.uuid}` };
    }
    if (req.mac) {
      const n = this.inventory.findByMac(req.mac);
      if (n) {
        if (req.ip && n.ip !== req.ip) return { kind: 'mismatch', node: n, requesterIp: req.ip };
        return { kind: 'node', node: n, discovered: false };
      }
      const session = this.inventory.getDiscovery();
      if (session) {
        const refused = this.discoveryLimit.take(session, this.inventory.countPending());
        if (refused) {
          this.log.warn({ mac: req.mac, ip: req.ip, via: req.via, why: refused }, 'discovery refused a new MAC');
          return { kind: 'unknown', lookedUp: `MAC ${req.mac}` };
        }
        const node = this.inventory.registerDiscovered(req.mac, req.via);
        this.log.info({ node: node.name, mac: node.mac, ip: node.ip, via: req.via }, 'discovered node');
        this.opts.onDiscovered?.(node);
        return { kind: 'node', node, discovered: true };
      }
      return { kind: 'unknown', lookedUp: `MAC ${req.mac}` };
    }
    if (req.ip) {
      const n = this.inventory.findByIp(req.ip);
      return n ? { kind: 'node', node: n, discovered: false } : { kind: 'unknown', lookedUp: `IP ${req.ip}` };
    }
    return { kind: 'unknown', lookedUp: 'nothing (no MAC, IP or UUID in the request)' };
  }
}
