/**
 * Images and the swarm through the admin API:
 *
 *   GET /api/v1/images          {images: [ImageMeta + users + swarm numbers]}
 *   GET /api/v1/swarm/history   {points: [{t, frontend, peers}]}  bytes sent over time
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { API_PREFIX } from '../../../protocol/api.js';
import type { SwarmHistory } from '../../cluster/swarm-history.js';
import type { ImageMeta, ImageStore } from '../../images/store.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord } from '../../inventory/types.js';
import type { SwarmImageJson } from '../../core/image-sync.js';
import { sendJson } from './fleet.js';

export const API_IMAGES_PATH = `${API_PREFIX}/images`;
export const API_SWARM_HISTORY_PATH = `${API_PREFIX}/swarm/history`;

export interface ImageRow extends ImageMeta {
  /** Nodes whose profile (or attributes) install this image, and their appliances. */
  usedBy: { nodes: number; appliances: string[] };
  swarm: SwarmImageJson | null;
}

export interface ImageRouteDeps {
  /** Who may call these routes (router-level, run once a route matched; ../api-auth.ts). */
  auth?: Middleware;
  images: ImageStore;
  inventory: Inventory;
  imageFor: (node: NodeRecord) => { name: string } | undefined;
  swarm: () => Promise<SwarmImageJson[]>;
  history: SwarmHistory;
}

/** Every image with who uses it and what the swarm is doing with it. */
export async function imageRows(deps: ImageRouteDeps): Promise<ImageRow[]> {
  const swarm = new Map((await deps.swarm()).map((s) => [s.image, s]));
  const users = new Map<string, { nodes: number; appliances: Set<string> }>();
  for (const n of deps.inventory.listNodes()) {
    let name: string | undefined;
    try {
      name = deps.imageFor(n)?.name;
    } catch {
      name = undefined;
    }
    if (!name) continue;
    const u = users.get(name) ?? { nodes: 0, appliances: new Set<string>() };
    u.nodes++;
    u.appliances.add(n.appliance);
    users.set(name, u);
  }
  return deps.images.list().map((m) => {
    const u = users.get(m.name);
    return { ...m, usedBy: { nodes: u?.nodes ?? 0, appliances: [...(u?.appliances ?? [])].sort() }, swarm: swarm.get(m.name) ?? null };
  });
}

export function imagesApiRoutes(deps: ImageRouteDeps): Router {
  const router = new Router();
  if (deps.auth) router.use(deps.auth);
  router.get(API_IMAGES_PATH, async (ctx) => sendJson(ctx, { images: await imageRows(deps) }));
  router.get(API_SWARM_HISTORY_PATH, (ctx) => sendJson(ctx, { points: deps.history.series() }));
  return router;
}
