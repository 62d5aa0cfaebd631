/**
 * Answers PXELINUX's `pxelinux.cfg/<name>` requests from the inventory.
 *
 * - `<uuid>`: the node with that SMBIOS UUID, else not found.
 * - `01-<mac>`: the node with that MAC (discovery may register the MAC here);
 *   the source IP is deliberately not compared, since DHCP may not have handed
 *   out the registered address yet. Unknown MAC: not found.
 * - `<HEXIP>` (8 digits): the node registered with that IP, else not found.
 * - `<HEXIP>` minus 1..7 digits: only a static `<tftpRoot>/pxelinux.cfg/<name>`.
 * - `default`: a static `<tftpRoot>/pxelinux.cfg/default` if present, else the
 *   generated `discover` config while discovery is active, `default` otherwise.
 *
 * Every node name is answered from BootPolicy.decide({purpose: 'boot'}): the
 * config is rendered for the assignment's mode, with its install session token
 * on the kernel command line only when the assignment grants one (the request
 * came from the node's registered IP). Every answer (served or failed to
 * render) is recorded in the node's event history, never with the token. `null` means "file not
 * found" so PXELINUX moves on to its next name; a render failure is logged and
 * also answers null, so the node falls through to `default`.
 */
import { isKickswarmError } from '../../protocol/errors.js';
import type { Ipv4 } from '../../protocol/node.js';
import type { Assignment, BootPolicy } from '../core/boot.js';
import type { Inventory } from '../inventory/store.js';
import type { NodeRecord } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { PxeMode, Renderer } from '../render/types.js';
import { readSmallFileInRoot } from '../sandbox.js';
import { PXE_CFG_DIR, classifyPxeConfigName } from './names.js';

export interface PxeServiceDeps {
  policy: BootPolicy;
  inventory: Inventory;
  renderer: Renderer;
  /** The TFTP root; static configs live in `<tftpRoot>/pxelinux.cfg/`. */
  tftpRoot: string;
  log: Logger;
}

export class PxeService {
  private readonly policy: BootPolicy;
  private readonly inventory: Inventory;
  private readonly renderer: Renderer;
  private readonly tftpRoot: string;
  private readonly log: Logger;

  constructor(deps: PxeServiceDeps) {
    this.policy = deps.policy;
    this.inventory = deps.inventory;
    this.renderer = deps.renderer;
    this.tftpRoot = deps.tftpRoot;
    this.log = deps.log;
  }

  /**
   * The bytes of `pxelinux.cfg/<name>` for a requester at `remoteIp`, or null
   * for "file not found". Throws only on unexpected
   * failures (not on bad names, unknown nodes or template errors).
   */
  configFor(name: string, remoteIp: Ipv4 | undefined): Buffer | null {
    const c = classifyPxeConfigName(name);
    switch (c.kind) {
      case 'uuid':
        return this.forAssignment(this.policy.decide({ purpose: 'boot', uuid: c.uuid, source: remoteIp, via: 'tftp' }), c.name, remoteIp);
      case 'mac':
        return this.forAssignment(this.policy.decide({ purpose: 'boot', mac: c.mac, source: remoteIp, via: 'tftp' }), c.name, remoteIp);
      case 'ip':
        return this.forAssignment(this.policy.decide({ purpose: 'boot', ip: c.ip, source: remoteIp, via: 'tftp' }), c.name, remoteIp);
      case 'ipPrefix':
        return this.staticConfig(c.name, remoteIp);
      case 'default':
        return this.staticConfig('default', remoteIp) ?? this.generatedDefault(remoteIp);
      case 'invalid':
        this.log.debug({ name: c.name, reason: c.reason, remoteIp }, 'not a pxelinux.cfg name');
        return null;
    }
  }

  private forAssignment(a: Assignment, name: string, remoteIp: Ipv4 | undefined): Buffer | null {
    if (a.kind !== 'serve') {
      this.log.debug({ name, remoteIp, refusal: a.code }, `no pxelinux.cfg/${name}`);
      return null;
    }
    const { node, boot } = a;
    const text = this.render(node, boot.mode, name, remoteIp, boot.session?.token);
    if (text === null) return null;
    const withToken = boot.session ? ' with its session token' : '';
    this.event(node, `served ${PXE_CFG_DIR}/${name} (${boot.mode})${withToken}`);
    this.log.info({ node: node.name, name, mode: boot.mode, remoteIp, discovered: a.discovered, session: boot.session !== null }, 'served pxelinux config');
    return Buffer.from(text, 'utf8');
  }

  private generatedDefault(remoteIp: Ipv4 | undefined): Buffer | null {
    const mode: PxeMode = this.policy.defaultMode();
    const text = this.render(null, mode, 'default', remoteIp);
    if (text === null) return null;
    this.log.debug({ mode, remoteIp }, 'served generated pxelinux.cfg/default');
    return Buffer.from(text, 'utf8');
  }

  /** Renders, or logs the failure (and records it for a node) and answers null. */
  private render(node: NodeRecord | null, mode: PxeMode, name: string, remoteIp: Ipv4 | undefined, session?: string): string | null {
    try {
      return this.renderer.pxelinux(node, mode, session);
    } catch (e) {
      if (!isKickswarmError(e)) throw e;
      this.log.error({ node: node?.name, name, mode, remoteIp, err: e.message, code: e.code }, 'cannot render pxelinux config');
      if (node) this.event(node, `failed to render ${PXE_CFG_DIR}/${name} (${mode}): ${e.message}`);
      return null;
    }
  }

  private staticConfig(name: string, remoteIp: Ipv4 | undefined): Buffer | null {
    const buf = readSmallFileInRoot(this.tftpRoot, `${PXE_CFG_DIR}/${name}`);
    if (!buf) {
      this.log.debug({ name, remoteIp }, `no static pxelinux.cfg/${name}`);
      return null;
    }
    this.log.info({ name, remoteIp }, 'served static pxelinux config');
    return buf;
  }

  private event(node: NodeRecord, message: string): void {
    try {
      this.inventory.recordEvent(node.name, 'pxe', message);
    } catch (e) {
      this.log.warn({ node: node.name, err: (e as Error).message }, 'cannot record pxe event');
    }
  }
}
