/**
 * `GET /metrics` (Prometheus text format; the admin token unless config
 * `metrics.public`, Prometheus sends it with `authorization: {credentials_file: ...}`)
 * and `GET /api/v1/swarm` (the same numbers as JSON; admin token like all of /api/v1).
 */
import Router from '@koa/router';
import { API_PREFIX, METRICS_PATH } from '../../../protocol/api.js';
import type { Metrics } from '../../metrics.js';
import type { SwarmImageJson } from '../../core/image-sync.js';
import { requireAdmin, requireNodeOrAdmin } from '../auth.js';

export interface MetricsRouteDeps {
  metrics: Metrics;
  swarm: () => Promise<SwarmImageJson[]>;
  /** The admin token. */
  apiToken: string;
  /** Config `metrics.public`: `/metrics` answers anyone. Default false. */
  metricsPublic?: boolean;
}

export function metricsRoutes(deps: MetricsRouteDeps): Router {
  const router = new Router();
  const metricsAccess = requireNodeOrAdmin({ adminToken: deps.apiToken, isPublic: () => deps.metricsPublic === true, what: 'metrics (metrics.public is off)' });
  router.get(METRICS_PATH, metricsAccess, async (ctx) => {
    const { contentType, body } = await deps.metrics.text();
    ctx.type = contentType;
    ctx.body = body;
  });
  router.get(`${API_PREFIX}/swarm`, requireAdmin(deps.apiToken), async (ctx) => {
    ctx.body = { images: await deps.swarm() };
  });
  return router;
}
