/**
 * The JSON admin API under `/api/v1`. Every route needs the admin token: the
 * check is this router's first middleware, so it runs whenever one of its
 * routes matched, however the path was spelled (case, slashes). Every input is parsed at the edge: zod for the body's shape, then the
 * protocol parsers for MACs, IPs, names and actions, so errors read the same
 * as the CLI's. Inventory rules (conflicts, unknown names) apply unchanged.
 * Every node in an answer has its secret attributes masked
 * (../../inventory/secret-attrs.ts); `GET /api/v1/nodes/NAME?secrets=show`
 * gives them in clear to the admin role only (403 for a viewer).
 */
import Router from '@koa/router';
import { z } from 'zod';
import { ForbiddenError, InvalidInputError } from '../../../protocol/errors.js';
import { type NodeName, parseAttrKey, parseBootAction, parseIpv4, parseMac, parseNodeName, parseSimpleName, parseUuid } from '../../../protocol/node.js';
import {
  API_BOOT_PATH,
  API_NODES_PATH,
  API_PROFILES_STATUS_PATH,
  type ApiProfileStatus,
  type NodeDetailResponse,
  type NodeListResponse,
  type NodeResponse,
  type RemoveNodeResponse,
} from '../../../protocol/api.js';
import { maskNode } from '../../inventory/secret-attrs.js';
import type { NewNode, NodeSelector } from '../../inventory/types.js';
import { tokenMatches } from '../auth.js';
import { apiAuth } from '../api-auth.js';
import { queryValue, readJson } from '../body.js';
import type { HttpDeps } from '../types.js';

const shortString = z.string().max(1024);
const index = z.number().int().min(0).max(1_000_000);

const AddNodeBody = z
  .object({
    name: shortString,
    mac: shortString,
    ip: shortString,
    appliance: shortString.optional(),
    rack: index.nullable().optional(),
    rank: index.nullable().optional(),
    uuid: shortString.nullable().optional(),
    attrs: z.record(shortString, z.string().max(16 * 1024)).optional(),
    bootAction: shortString.optional(),
  })
  .strict();

const SetBootBody = z.object({ action: shortString }).strict();

const BulkBootBody = z
  .object({
    action: shortString,
    all: z.literal(true).optional(),
    appliance: shortString.optional(),
    names: z.array(shortString).min(1).max(100_000).optional(),
  })
  .strict();

/** Validates `value` against `schema`; the first problem becomes a one-line InvalidInputError. */
export function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  if (value === undefined) throw new InvalidInputError('a JSON body is required');
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new InvalidInputError(`invalid body: ${where}${issue?.message ?? 'does not match'}`);
}

function toNewNode(b: z.infer<typeof AddNodeBody>): NewNode {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(b.attrs ?? {})) attrs[parseAttrKey(k)] = v;
  return {
    name: parseNodeName(b.name),
    mac: parseMac(b.mac),
    ip: parseIpv4(b.ip),
    uuid: b.uuid ? parseUuid(b.uuid) : null,
    appliance: parseSimpleName(b.appliance ?? 'compute', 'appliance'),
    rack: b.rack ?? null,
    rank: b.rank ?? null,
    attrs,
    bootAction: parseBootAction(b.bootAction ?? 'os'),
  };
}

function toSelector(b: z.infer<typeof BulkBootBody>): NodeSelector {
  const given = [b.all !== undefined, b.appliance !== undefined, b.names !== undefined].filter(Boolean).length;
  if (given !== 1) throw new InvalidInputError('give exactly one of "all": true, "appliance" or "names"');
  if (b.all) return { all: true };
  if (b.appliance !== undefined) return { appliance: parseSimpleName(b.appliance, 'appliance') };
  return { names: b.names!.map((n) => parseNodeName(n)) };
}

export function apiRouter(deps: HttpDeps): Router {
  const { inventory, renderer } = deps;
  const limit = deps.maxBodyBytes;
  const router = new Router();
  router.use(apiAuth({ roleForToken: deps.roleForToken ?? ((t) => (tokenMatches(deps.apiToken, t) ? 'admin' : undefined)), sessions: deps.sessions }));
  const nodePath = `${API_NODES_PATH}/:name`;
  const nameParam = (raw: string | undefined): NodeName => parseNodeName(raw ?? '');

  router.get(API_NODES_PATH, (ctx) => {
    const a = queryValue(ctx, 'appliance');
    const body: NodeListResponse = {
      nodes: inventory.listNodes(a !== undefined ? { appliance: parseSimpleName(a, 'appliance') } : {}).map(maskNode),
    };
    ctx.body = body;
  });

  router.get(nodePath, (ctx) => {
    const node = inventory.requireNode(nameParam(ctx.params.name));
    const secrets = queryValue(ctx, 'secrets');
    if (secrets !== undefined && secrets !== 'show' && secrets !== 'mask') throw new InvalidInputError(`secrets must be show or mask, not ${JSON.stringify(secrets.slice(0, 40))}`);
    if (secrets === 'show' && ctx.state.role !== 'admin') throw new ForbiddenError('only the admin role may read secret attributes');
    const body: NodeDetailResponse = { node: secrets === 'show' ? node : maskNode(node), events: inventory.events(node.name, 50) };
    ctx.body = body;
  });

  router.post(API_NODES_PATH, async (ctx) => {
    const n = toNewNode(parseBody(AddNodeBody, await readJson(ctx, limit)));
    const body: NodeResponse = { node: maskNode(inventory.addNode(n)) };
    ctx.status = 201;
    ctx.set('Location', `${API_NODES_PATH}/${n.name}`);
    ctx.body = body;
  });

  router.delete(nodePath, (ctx) => {
    const name = nameParam(ctx.params.name);
    inventory.removeNode(name);
    const body: RemoveNodeResponse = { removed: name };
    ctx.body = body;
  });

  router.put(`${nodePath}/boot`, async (ctx) => {
    const name = nameParam(ctx.params.name);
    const b = parseBody(SetBootBody, await readJson(ctx, limit));
    const [node] = inventory.setBootAction({ names: [name] }, parseBootAction(b.action), 'api');
    const body: NodeResponse = { node: maskNode(node!) };
    ctx.body = body;
  });

  router.post(API_BOOT_PATH, async (ctx) => {
    const b = parseBody(BulkBootBody, await readJson(ctx, limit));
    const action = parseBootAction(b.action);
    const body: NodeListResponse = { nodes: inventory.setBootAction(toSelector(b), action, 'api').map(maskNode) };
    ctx.body = body;
  });

  router.post(`${nodePath}/approve`, (ctx) => {
    const [node] = inventory.approve({ names: [nameParam(ctx.params.name)] }, 'api');
    const body: NodeResponse = { node: maskNode(node ?? inventory.requireNode(nameParam(ctx.params.name))) };
    ctx.body = body;
  });

  router.get(API_PROFILES_STATUS_PATH, (ctx) => {
    const body: ApiProfileStatus = renderer.status();
    ctx.body = body;
  });

  return router;
}
