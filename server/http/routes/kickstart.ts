/**
 * `GET /install/sbin/kickstart.cgi`: the installing node's kickstart. The node
 * is identified by BootPolicy from the announced MAC (X-RHN-Provisioning-MAC-n)
 * and the source IP; every answer about a known node lands in its event history.
 *
 * 200 text/plain kickstart | 400 malformed MAC header | 403 MAC registered with
 * another IP, or boot action not `install` | 404 unknown node (names what was
 * looked up) | 503 + Retry-After when the BusyGauge says busy (more than
 * `kickstart.maxInFlight` requests open, or the event loop late by more than
 * `kickstart.maxLoopDelayMs`; ../limiter.ts) | 500 template error.
 */
import Router from '@koa/router';
import { BusyError, ForbiddenError, NotFoundError } from '../../../protocol/errors.js';
import type { Ipv4, Mac, NodeName } from '../../../protocol/node.js';
import { KICKSTART_PATH } from '../../../protocol/api.js';
import type { Inventory } from '../../inventory/store.js';
import type { Logger } from '../../log.js';
import { errorAnswer } from '../errors.js';
import type { BusyGauge } from '../limiter.js';
import { type ProvisioningMac, provisioningMacs, remoteIp } from '../requester.js';
import type { HttpDeps } from '../types.js';
import { kickstartImageData } from '../../cluster/installed-image.js';

/**
 * Records a node event without ever failing the request (the node may have
 * been removed meanwhile).
 */
export function safeRecordEvent(
  inventory: Inventory,
  log: Logger,
  name: NodeName,
  kind: string,
  message: string,
  data?: Record<string, unknown>,
): void {
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
    const ip: Ipv4 | undefined = remoteIp(ctx);
    const chosen = chooseMac(provisioningMacs(ctx.req.headers), inventory);
    const mac: Mac | undefined = chosen?.mac;
    const decision = policy.decide({ mac, ip, via: 'kickstart' });

    if (decision.kind === 'unknown') {
      const from = mac && ip ? ` (request from IP ${ip})` : '';
      throw new NotFoundError(`kickstart.cgi: no node registered for ${decision.lookedUp}${from}`, { mac, ip });
    }

    const node = decision.node;
    const note = (status: number, message: string, extra: Record<string, unknown> = {}): void =>
      safeRecordEvent(inventory, log, node.name, 'kickstart', `kickstart ${status}: ${message}`, {
        status,
        ip: ip ?? null,
        mac: mac ?? null,
        ...extra,
      });

    if (decision.kind === 'mismatch') {
      const msg = `MAC ${node.mac} belongs to node ${node.name} registered with IP ${node.ip}, but the request came from IP ${decision.requesterIp}`;
      note(403, msg);
      throw new ForbiddenError(`kickstart.cgi: ${msg}`, { node: node.name });
    }
    if (node.bootAction !== 'install') {
      const msg = `node ${node.name} has boot action ${node.bootAction}, not install (kickswarm boot set ${node.name} --action install)`;
      note(403, msg);
      throw new ForbiddenError(`kickstart.cgi: ${msg}`, { node: node.name });
    }

    const busy = gauge.busy();
    if (busy) {
      note(503, `busy (${busy}), told to retry in ${retryAfterSeconds} s`);
      throw new BusyError(`kickstart.cgi: busy (${busy}); retry in ${retryAfterSeconds} s`, retryAfterSeconds);
    }
    try {
      const text = await renderer.kickstart(node);
      ctx.status = 200;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = text;
      const how = decision.discovered ? 'discovered and served' : 'served';
      note(200, `${how} to ${ip ?? 'unknown IP'}${chosen ? ` (${chosen.header})` : ''}`, { bytes: Buffer.byteLength(text), ...kickstartImageData(text) });
    } catch (err) {
      const a = errorAnswer(err);
      note(a.status, a.message, { code: a.code });
      throw err;
    }
  });

  return router;
}
