/**
 * `GET /metrics` (Prometheus text format, no token: scrapers have none) and
 * `GET /api/v1/swarm` (the same numbers as JSON; behind the API token like all
 * of /api/v1).
 */
import Router from '@koa/router';
import { API_PREFIX, METRICS_PATH } from '../../../protocol/api.js';
import type { Metrics } from '../../metrics.js';
import type { SwarmImageJson } from '../../core/image-sync.js';

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
