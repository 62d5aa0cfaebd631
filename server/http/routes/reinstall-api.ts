/**
 * Reinstall from the admin API, the same code as `kickswarm reinstall`:
 *
 *   POST /api/v1/reinstall/plan  {selection, power?, parallel?}  -> ReinstallPlan (changes nothing)
 *   POST /api/v1/reinstall       {selection, power?, powerCommand?, parallel?}
 *        202 {nodes, power}: boot action install is set and install progress cleared
 *        before the answer; power cycles run on, K at a time, recorded as node events.
 *
 * A selection is exactly one of `"all": true`, `"appliance"`, `"rack"`, `"names"`.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { API_PREFIX } from '../../../protocol/api.js';
import { InvalidInputError } from '../../../protocol/errors.js';
import { parseNodeName, parseSimpleName } from '../../../protocol/node.js';
import { type PlanRenderer, planReinstallInSlices } from '../../cluster/plan.js';
import { createPowerDriver, parsePowerDriverName } from '../../cluster/power.js';
import { startReinstall } from '../../cluster/reinstall.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord, NodeSelector } from '../../inventory/types.js';
import type { Logger } from '../../log.js';
import { Serial } from '../../slices.js';
import { readJson } from '../body.js';
import { parseBody } from './api.js';
import { sendJson } from './fleet.js';

export const API_REINSTALL_PATH = `${API_PREFIX}/reinstall`;
export const API_REINSTALL_PLAN_PATH = `${API_PREFIX}/reinstall/plan`;

const s = z.string().max(1024);
const Body = z
  .object({
    all: z.literal(true).optional(),
    appliance: s.optional(),
    rack: z.number().int().min(0).max(1_000_000).optional(),
    names: z.array(s).min(1).max(100_000).optional(),
    power: s.optional(),
    powerCommand: s.optional(),
    parallel: z.number().int().min(1).max(1000).optional(),
  })
  .strict();
type Body = z.infer<typeof Body>;

/** The nodes a request selects (NotFoundError for an unknown name; nothing changes). */
export function selectNodes(inventory: Inventory, b: Body): NodeRecord[] {
  const given = [b.all !== undefined, b.appliance !== undefined, b.rack !== undefined, b.names !== undefined].filter(Boolean).length;
  if (given !== 1) throw new InvalidInputError('give exactly one of "all": true, "appliance", "rack" or "names"');
  let sel: NodeSelector;
  if (b.all) sel = { all: true };
  else if (b.appliance !== undefined) sel = { appliance: parseSimpleName(b.appliance, 'appliance') };
  else if (b.rack !== undefined) return inventory.listNodes().filter((n) => n.rack === b.rack);
  else sel = { names: b.names!.map((n) => parseNodeName(n)) };
  return inventory.select(sel);
}

export interface ReinstallRouteDeps {
  /** Who may call these routes (router-level, run once a route matched; ../api-auth.ts). */
  auth?: Middleware;
  inventory: Inventory;
  renderer: PlanRenderer;
  log: Logger;
  /** Runs the every-node jobs one at a time (shared with the template editor); default: one of its own. */
  serial?: Serial;
}

export function reinstallRoutes(deps: ReinstallRouteDeps): Router {
  const { inventory, log } = deps;
  const serial = deps.serial ?? new Serial('rendering every node');
  const router = new Router();
  if (deps.auth) router.use(deps.auth);

  router.post(API_REINSTALL_PLAN_PATH, async (ctx) => {
    const b = parseBody(Body, await readJson(ctx, 4 * 1024 * 1024));
    const nodes = selectNodes(inventory, b);
    // Rendered in slices, one such job at a time: a 10,000-node plan takes seconds and must not stop the server.
    sendJson(ctx, await serial.run(() => planReinstallInSlices(nodes, deps.renderer, inventory)));
  });

  router.post(API_REINSTALL_PATH, async (ctx) => {
    const b = parseBody(Body, await readJson(ctx, 4 * 1024 * 1024));
    const power = createPowerDriver(parsePowerDriverName(b.power ?? 'none'), { command: b.powerCommand });
    const nodes = selectNodes(inventory, b);
    const names = nodes.map((n) => n.name);
    if (names.length === 0) {
      ctx.status = 200;
      ctx.body = { nodes: [], power: power.name };
      return;
    }
    // The inventory changes happen before startReinstall's first await; the power cycles continue after the answer.
    const run = startReinstall({ inventory, power, now: () => new Date(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) }, { names }, { parallel: b.parallel });
    run.then(
      (r) => {
        const failed = r.power.filter((p) => !p.ok).length;
        log.info({ nodes: r.nodes.length, power: power.name, failed }, 'reinstall power cycles finished');
      },
      (err: unknown) => log.error({ err: (err as Error).message }, 'reinstall failed'),
    );
    ctx.status = 202;
    ctx.body = { nodes: names, power: power.name, manual: power.manual };
  });

  return router;
}
