/**
 * `GET /install/sbin/kickstart.cgi`: the installing node's kickstart, rendered
 * from BootPolicy's assignment (purpose `kickstart`): the node's install
 * session token (X-Kickswarm-Session or `?session=`), checked against its
 * registered IP and MAC; with sessions off, the announced MAC
 * (X-RHN-Provisioning-MAC-n) or the source IP. Every answer about a known
 * node lands in its event history.
 *
 * 200 text/plain kickstart | 400 malformed MAC header | 403 no, wrong,
 * expired or ended session, MAC registered with another IP, no IPv4 source,
 * or boot action not `install` | 404 unknown node | 503 + Retry-After when
 * the BusyGauge says busy (more than
 * `kickstart.maxInFlight` requests open, or the event loop late by more than
 * `kickstart.maxLoopDelayMs`; ../limiter.ts) | 500 template error.
 */
import Router from '@koa/router';
import { BusyError } from '../../../protocol/errors.js';
import type { Ipv4, Mac, NodeName } from '../../../protocol/node.js';
import { KICKSTART_PATH } from '../../../protocol/api.js';
import { refusalError } from '../../core/assignment.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord } from '../../inventory/types.js';
import type { Logger } from '../../log.js';
import { errorAnswer } from '../errors.js';
import { type BusyGauge, holdUntilAnswered } from '../limiter.js';
import { type ProvisioningMac, provisioningMacs, remoteIp } from '../requester.js';
import { presentedSession } from '../session.js';
import type { HttpDeps } from '../types.js';
import { kickstartImageData } from '../../cluster/installed-image.js';

/**
 * Records a node event without ever failing the request (the node may have
 * been removed meanwhile).
 */
export function safeRecordEvent(inventory: Inventory, log: Logger, name: NodeName, kind: string, message: string, data?: Record<string, unknown>): void {
  try {
    inventory.recordEvent(name, kind, message, data);
  } catch (err) {
    log.warn({ node: name, kind, err: (err as Error).message }, 'could not record node event');
  }
}

/**
 * Of the announced interfaces, the first one registered in the inventory, else
 * the first announced (anaconda lists every NIC; the node may be registered
 * under its second one).
 */
function chooseMac(macs: ProvisioningMac[], inventory: Inventory): ProvisioningMac | undefined {
  return macs.find((m) => inventory.findByMac(m.mac) !== undefined) ?? macs[0];
}

/**
 * The route. `gauge` must see each of its requests from arrival (createApp's
 * first middleware calls `enter()` for this path).
 */
export function kickstartRoute(deps: HttpDeps, gauge: BusyGauge): Router {
  const { inventory, policy, renderer, log } = deps;
  const { retryAfterSeconds } = deps.config.kickstart;
  const router = new Router();

  router.get(KICKSTART_PATH, async (ctx) => {
    holdUntilAnswered(gauge, ctx.req, ctx.res);
    const ip: Ipv4 | undefined = remoteIp(ctx);
    const chosen = chooseMac(provisioningMacs(ctx.req.headers), inventory);
    const mac: Mac | undefined = chosen?.mac;
    const a = policy.decide({ purpose: 'kickstart', mac, source: ip, session: presentedSession(ctx), via: 'kickstart' });
    const note = (node: NodeRecord, status: number, message: string, extra: Record<string, unknown> = {}): void =>
      safeRecordEvent(inventory, log, node.name, 'kickstart', `kickstart ${status}: ${message}`, {
        status,
        ip: ip ?? null,
        mac: mac ?? null,
        ...extra,
      });

    if (a.kind === 'refused') {
      const err = refusalError(a, 'kickstart.cgi', retryAfterSeconds);
      // The node's own history may say more than the requester is told.
      const why = a.node && a.code === 'ip_mismatch' ? `${a.message} (node ${a.node.name} is registered with IP ${a.node.ip})` : a.message;
      if (a.node) note(a.node, errorAnswer(err).status, why, { refusal: a.code });
      throw err;
    }
    const node = a.node;

    const busy = gauge.busy();
    if (busy) {
      note(node, 503, `busy (${busy}), told to retry in ${retryAfterSeconds} s`);
      throw new BusyError(`kickstart.cgi: busy (${busy}); retry in ${retryAfterSeconds} s`, retryAfterSeconds);
    }
    try {
      const text = await renderer.kickstart(node);
      ctx.status = 200;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = text;
      const how = a.discovered ? 'discovered and served' : 'served';
      note(node, 200, `${how} to ${ip ?? 'unknown IP'}${chosen ? ` (${chosen.header})` : ''}`, { bytes: Buffer.byteLength(text), ...kickstartImageData(text) });
      deps.onKickstartServed?.(node, text);
    } catch (err) {
      const e = errorAnswer(err);
      note(node, e.status, e.message, { code: e.code });
      throw err;
    }
  });

  return router;
}
