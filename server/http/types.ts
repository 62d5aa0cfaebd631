/** What the HTTP app is built from; `main.ts` passes the real parts, tests pass fakes. */
import type Router from '@koa/router';
import type { SessionStore } from '../auth/sessions.js';
import type { Role } from '../auth/tokens.js';
import type { Config } from '../config/schema.js';
import type { BootPolicy } from '../core/boot.js';
import type { Inventory } from '../inventory/store.js';
import type { NodeRecord } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { ProfileStatus, Renderer } from '../render/types.js';

/**
 * The part of the Renderer the HTTP routes use. A real `Renderer` fits; a
 * kickstart may also come back as a Promise (kickstart.cgi's in-flight count,
 * arrival to response, covers it).
 */
export interface HttpRenderer {
  kickstart(node: NodeRecord): string | Promise<string>;
  status(): ProfileStatus;
}

/** Fails to compile if the real Renderer stops fitting HttpRenderer. */
type Assert<T extends true> = T;
export type RendererFitsHttp = Assert<Renderer extends HttpRenderer ? true : false>;

export interface HttpDeps {
  inventory: Inventory;
  policy: BootPolicy;
  renderer: HttpRenderer;
  config: { kickstart: Pick<Config['kickstart'], 'maxInFlight' | 'maxLoopDelayMs' | 'retryAfterSeconds'> };
  /** Bearer token of `/api/v1`; an empty token refuses every API request. */
  apiToken: string;
  /** A second token the OMF routes (`/pxe/*`) accept besides the admin token (config `omf.token`). */
  omfToken?: string;
  /** Role of a presented API token (admin, viewer); default: only `apiToken`, as admin. */
  roleForToken?: (token: string) => Role | undefined;
  /** Dashboard sessions, accepted by `/api/v1` as well (writes need the CSRF header). */
  sessions?: SessionStore;
  log: Logger;
  /** Mounted after the built-in routes (images, frisbee, metrics, ...). */
  extraRouters?: Router[];
  /** Called after kickstart.cgi served a node its kickstart (kept for reinstall plans); must not throw. */
  onKickstartServed?: (node: NodeRecord, text: string) => void;
  /** Called once per answered request (metrics). */
  onResponse?: (path: string, status: number) => void;
  /** Largest body the built-in routes read; default MAX_BODY_BYTES (64 KiB). */
  maxBodyBytes?: number;
}
