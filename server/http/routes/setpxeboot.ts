/**
 * `GET|POST /install/sbin/public/setPxeboot.cgi`: an installing node flips its
 * own boot action to `os` once the install succeeded, which ends its install
 * session. The requester is found by its install session token
 * (X-Kickswarm-Session or `session=`) checked against its registered IP, or,
 * with sessions off, by its source IP only; so a node can change nobody's
 * action but its own. The only change a node may make is `install -> os`
 * (NODE_FLIPS): anything that would give a process on the node a kickstart
 * (`install`) or let it plant an image (`capture`) is an admin's decision. The
 * action comes from, first match wins: query `action=`, query
 * `params={"action":"os"}` (ROCKS), then for POST a form or JSON body with
 * `action` or `params`.
 *
 * 200 one text line | 400 missing/unknown action | 403 no, wrong, expired or
 * ended session, or a change other than install -> os | 404 unknown requester.
 * Idempotent: asking for the current action is a 200 that changes nothing.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { ForbiddenError, InvalidInputError } from '../../../protocol/errors.js';
import { type BootAction, BOOT_ACTIONS, parseBootAction } from '../../../protocol/node.js';
import { SETPXEBOOT_PATH } from '../../../protocol/api.js';
import { queryValue, readFields } from '../body.js';
import { refusalError } from '../../core/assignment.js';
import { remoteIp } from '../requester.js';
import { presentedSession } from '../session.js';
import type { HttpDeps } from '../types.js';
import { installedImageEvent, newlyInstalledImage } from '../../cluster/installed-image.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord } from '../../inventory/types.js';

/** The action inside ROCKS's `params` value: a JSON object with a string `action`. */
export function actionFromParams(params: string): BootAction {
  let v: unknown;
  try {
    v = JSON.parse(params);
  } catch {
    throw new InvalidInputError(`params is not JSON: ${JSON.stringify(params.slice(0, 80))} (want params={"action":"os"})`);
  }
  const action = typeof v === 'object' && v !== null ? (v as { action?: unknown }).action : undefined;
  if (typeof action !== 'string') throw new InvalidInputError('params has no "action" (want params={"action":"os"})');
  return parseBootAction(action);
}

/** The boot-action changes a node may make for itself: from -> to. */
export const NODE_FLIPS: ReadonlyArray<readonly [BootAction, BootAction]> = [['install', 'os']];

async function requestedAction(ctx: Context, maxBodyBytes: number | undefined): Promise<BootAction> {
  const qa = queryValue(ctx, 'action');
  if (qa !== undefined) return parseBootAction(qa);
  const qp = queryValue(ctx, 'params');
  if (qp !== undefined) return actionFromParams(qp);
  if (ctx.method === 'POST') {
    const fields = await readFields(ctx, maxBodyBytes);
    const ba = fields.get('action');
    if (ba !== undefined) return parseBootAction(ba);
    const bp = fields.get('params');
    if (bp !== undefined) return actionFromParams(bp);
  }
  throw new InvalidInputError(`missing action (want action=${BOOT_ACTIONS.join('|')} or params={"action":"os"})`);
}

/** A node that flips itself from install to os has installed what its kickstart named (installers that never report). */
function noteInstalledImage(inventory: Inventory, node: NodeRecord): void {
  try {
    const installed = newlyInstalledImage(inventory, node, new Date());
    if (!installed) return;
    const at = installed.at;
    inventory.setInstall(node.name, node.install ? { ...node.install, image: installed } : { state: 'done', startedAt: at, updatedAt: at, image: installed });
    const e = installedImageEvent(installed);
    inventory.recordEvent(node.name, 'image', e.message, e.data);
  } catch {
    // the node may have been removed meanwhile; the flip itself succeeded
  }
}

export function setPxebootRouter(deps: HttpDeps): Router {
  const { inventory, policy } = deps;
  const router = new Router();

  const handler = async (ctx: Context): Promise<void> => {
    const action = await requestedAction(ctx, deps.maxBodyBytes);
    const decision = policy.decide({ purpose: 'setpxeboot', source: remoteIp(ctx), session: presentedSession(ctx), via: 'setpxeboot' });
    if (decision.kind === 'refused') throw refusalError(decision, 'setPxeboot.cgi');
    const before = decision.node.bootAction;
    if (before !== action && !NODE_FLIPS.some(([from, to]) => from === before && to === action)) {
      throw new ForbiddenError(`setPxeboot.cgi: a node may only flip its own boot action from install to os, not ${before} -> ${action} (an admin sets it: kickswarm boot set)`);
    }
    const [node] = inventory.setBootAction({ names: [decision.node.name] }, action, 'node request');
    if (before === 'install' && action === 'os') noteInstalledImage(inventory, decision.node);
    const now = node?.bootAction ?? action;
    ctx.status = 200;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = before === now ? `${decision.node.name}: boot action ${now} (unchanged)\n` : `${decision.node.name}: boot action ${before} -> ${now}\n`;
  };

  router.get(SETPXEBOOT_PATH, handler);
  router.post(SETPXEBOOT_PATH, handler);
  return router;
}
