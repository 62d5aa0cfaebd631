/**
 * `GET /metrics` (Prometheus text format, no token: scrapers have none) and
 * `GET /api/v1/swarm` (the same numbers as JSON; behind the API token like all
 * of /api/v1).
 */
import Router from '@koa/router';
import { API_PREFIX, METRICS_PATH } from '../../../protocol/api.js';
import type { Metrics } from '../../metrics.js';

export interface SwarmImageJson {
  image: string;
  infoHash: string;
  /** Bytes the frontend's seeder uploaded to peers. */
  swarmBytesSent: number;
  /** Bytes the frontend sent over plain HTTP (downloads and web seed). */
  httpBytesSent: number;
  /** Peers connected to the frontend's seeder. */
  peers: number;
  /** Peers the tracker knows in this swarm. */
  seeders: number;
  leechers: number;
}

export function metricsRoutes(deps: { metrics: Metrics; swarm: () => Promise<SwarmImageJson[]> }): Router {
  const router = new Router();
  router.get(METRICS_PATH, async (ctx) => {
    const { contentType, body } = await deps.metrics.text();
    ctx.type = contentType;
    ctx.body = body;
  });
  router.get(`${API_PREFIX}/swarm`, async (ctx) => {
    ctx.body = { images: await deps.swarm() };
  });
  return router;
}
