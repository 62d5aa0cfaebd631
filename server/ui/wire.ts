/**
 * The dashboard's parts for the composition root: the fleet feed, the swarm
 * history sampler, the admin API routers it reads and writes through, the
 * `/ui/` pages, and the hook that keeps each served kickstart for reinstall
 * plans. `close()` stops the feed and the sampler.
 */
import type Router from '@koa/router';
import type { SessionStore } from '../auth/sessions.js';
import type { Role } from '../auth/tokens.js';
import { apiAuth } from '../http/api-auth.js';
import { FleetFeed } from '../cluster/fleet.js';
import { servedRecord } from '../cluster/served-kickstart.js';
import { SwarmHistory } from '../cluster/swarm-history.js';
import type { Config } from '../config/schema.js';
import type { DataDir } from '../datadir.js';
import { fleetRoutes } from '../http/routes/fleet.js';
import { imageRows, imagesApiRoutes } from '../http/routes/images-api.js';
import type { SwarmImageJson } from '../core/image-sync.js';
import { reinstallRoutes } from '../http/routes/reinstall-api.js';
import { templateRoutes } from '../http/routes/templates-api.js';
import type { ImageStore } from '../images/store.js';
import type { Inventory } from '../inventory/store.js';
import type { NodeRecord } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { ProfileService } from '../render/service.js';
import { uiRoutes } from './routes.js';
import { Serial } from '../slices.js';

export interface DashboardDeps {
  dirs: DataDir;
  config: Config;
  inventory: Inventory;
  renderer: ProfileService;
  images: ImageStore;
  sessions: SessionStore;
  roleForToken: (token: string) => Role | undefined;
  swarm: () => Promise<SwarmImageJson[]>;
  multicastBytes: () => number;
  log: Logger;
}

export interface Dashboard {
  routers: Router[];
  onKickstartServed: (node: NodeRecord, text: string) => void;
  close(): void;
}

export function dashboardRouters(d: DashboardDeps): Dashboard {
  const { inventory, renderer, log } = d;
  const stalled = () => d.config.stalledAfterSeconds;
  const auth = apiAuth({ roleForToken: d.roleForToken, sessions: d.sessions });
  const feed = new FleetFeed({ source: inventory, stalledAfterSeconds: stalled });
  const history = new SwarmHistory({
    frontend: async () => {
      const s = await d.swarm();
      const seeder = s.reduce((a, x) => a + x.swarmBytesSent, 0);
      return { seeder, total: seeder + s.reduce((a, x) => a + x.httpBytesSent, 0) + d.multicastBytes() };
    },
    fromPeers: () => inventory.installByteTotals().fromPeers,
  });
  history.start();
  const imageDeps = { images: d.images, inventory, imageFor: (n: NodeRecord) => renderer.imageFor(n), swarm: d.swarm, history };
  // Plans, previews and saves render every node: one at a time, whichever page asked.
  const serial = new Serial('rendering every node');
  const routers = [
    fleetRoutes({ inventory, feed, log, auth }),
    reinstallRoutes({ inventory, renderer, log, auth, serial }),
    templateRoutes({ dataDir: d.dirs.root, inventory, renderer, log, auth, serial }),
    imagesApiRoutes({ ...imageDeps, auth }),
    uiRoutes({
      sessions: d.sessions,
      roleForToken: d.roleForToken,
      inventory,
      dataDir: d.dirs.root,
      profileStatus: () => renderer.status(),
      imageRows: () => imageRows(imageDeps),
      stalledAfterSeconds: stalled,
      log,
    }),
  ];
  return {
    routers,
    onKickstartServed(node, text) {
      try {
        let attrs = node.attrs;
        try {
          attrs = renderer.attributes(node);
        } catch {
          // mask with the node's own attributes
        }
        inventory.setServedKickstart(node.name, servedRecord(node, text, attrs));
      } catch (err) {
        log.warn({ node: node.name, err: (err as Error).message }, 'could not keep the served kickstart');
      }
    },
    close() {
      feed.stop();
      history.close();
    },
  };
}
