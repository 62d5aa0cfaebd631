/**
 * `GET /install/sbin/boot.ipxe?mac=M`: the iPXE script of the node with MAC
 * `M` (iPXE fills it in from `${netX/mac}` in the URL the DHCP config hands
 * out), rendered from `templates/ipxe/<mode>.hbs` for the assignment
 * BootPolicy gives PXELINUX too (purpose `ipxe`): the same mode, and the
 * install session token on the kernel command line only when the request
 * comes from the node's registered IP. Unlike TFTP, the MAC must be
 * registered for the source IP, as kickstart.cgi checks it.
 *
 * 200 `text/plain` script | 400 no, repeated or malformed `mac` |
 * 403 MAC registered with another IP, or no IPv4 source | 404 unknown MAC
 * while discovery is off (iPXE then falls back to the firmware's next boot
 * device) | 500 template error. An unknown MAC while discovery is on is
 * registered by the decision (or, when discovery's limits refuse it, gets the
 * `discover` script, as PXELINUX falls through to its generated `default`).
 * Every answer about a known node lands in its event history, never with the token.
 */
import Router from '@koa/router';
import { InvalidInputError, isKickswarmError } from '../../../protocol/errors.js';
import { type Mac, parseMac } from '../../../protocol/node.js';
import { refusalError } from '../../core/assignment.js';
import type { BootPolicy } from '../../core/boot.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord } from '../../inventory/types.js';
import type { Logger } from '../../log.js';
import type { PxeMode, Renderer } from '../../render/types.js';
import { errorAnswer } from '../errors.js';
import { remoteIp } from '../requester.js';
import { safeRecordEvent } from './kickstart.js';

export const BOOT_IPXE_PATH = '/install/sbin/boot.ipxe';

export interface IpxeRouteDeps {
  policy: BootPolicy;
  inventory: Inventory;
  renderer: Pick<Renderer, 'ipxe'>;
  log: Logger;
}

/** The one `mac` query parameter as a MAC; InvalidInputError (400) otherwise. */
export function ipxeMacParam(query: Record<string, string | string[] | undefined>): Mac {
  const raw = query.mac;
  if (raw === undefined || raw === '') throw new InvalidInputError('boot.ipxe: the mac parameter is required (boot.ipxe?mac=${netX/mac})');
  if (Array.isArray(raw)) throw new InvalidInputError('boot.ipxe: give the mac parameter once');
  try {
    return parseMac(raw);
  } catch {
    throw new InvalidInputError(`boot.ipxe: mac ${JSON.stringify(raw.slice(0, 40))} is not an Ethernet MAC address`);
  }
}

export function ipxeRoute(deps: IpxeRouteDeps): Router {
  const { policy, inventory, renderer, log } = deps;
  const router = new Router();

  router.get(BOOT_IPXE_PATH, (ctx) => {
    const mac = ipxeMacParam(ctx.query);
    const ip = remoteIp(ctx);
    const a = policy.decide({ purpose: 'ipxe', mac, source: ip, via: 'ipxe' });
    const note = (node: NodeRecord, status: number, message: string, extra: Record<string, unknown> = {}): void =>
      safeRecordEvent(inventory, log, node.name, 'pxe', message, { status, ip: ip ?? null, mac, ...extra });

    let node: NodeRecord | null = null;
    let mode: PxeMode;
    let session: string | undefined;
    if (a.kind === 'refused') {
      if (a.code === 'unknown_node' && policy.defaultMode() === 'discover') {
        mode = 'discover';
      } else {
        const err = refusalError(a, 'boot.ipxe');
        const why = a.node && a.code === 'ip_mismatch' ? `${a.message} (node ${a.node.name} is registered with IP ${a.node.ip})` : a.message;
        if (a.node) note(a.node, errorAnswer(err).status, `boot.ipxe ${errorAnswer(err).status}: ${why}`, { refusal: a.code });
        log.info({ mac, ip, refusal: a.code }, 'boot.ipxe refused');
        throw err;
      }
    } else {
      node = a.node;
      mode = a.boot.mode === 'default' ? 'os' : a.boot.mode;
      session = a.boot.session?.token;
    }

    let text: string;
    try {
      text = renderer.ipxe(node, mode, session);
    } catch (e) {
      if (node && isKickswarmError(e)) note(node, 500, `failed to render boot.ipxe (${mode}): ${e.message}`, { code: e.code });
      log.error({ node: node?.name, mac, ip, mode, err: (e as Error).message }, 'cannot render iPXE script');
      throw e;
    }
    ctx.status = 200;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = text;
    if (node) note(node, 200, `served boot.ipxe (${mode})${session ? ' with its session token' : ''}`);
    log.info({ node: node?.name, mac, ip, mode, discovered: a.kind === 'serve' && a.discovered, session: session !== undefined }, 'served iPXE script');
  });

  return router;
}
