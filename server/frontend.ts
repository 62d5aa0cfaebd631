/**
 * The composition root of `kickswarm serve`: config -> inventory -> boot policy
 * -> renderer -> image store, swarm and multicast -> HTTP and TFTP transports.
 * Only this file wires parts together; each part takes its dependencies as
 * arguments. `start()` takes the data dir's serve lock, then brings everything
 * up (HTTP first, so the advertised URL knows its port); when any part fails
 * (a port it cannot bind, a data dir another server holds) it closes what it
 * started and rejects with one clear KickswarmError. `close()` takes it down in
 * reverse and is idempotent.
 */
import fs from 'node:fs';
import os from 'node:os';
import { ipFromSocketAddress } from '../protocol/node.js';
import { KICKSTART_PATH } from '../protocol/api.js';
import { CAPTURE_PATH } from '../protocol/install.js';
import type { Ipv4 } from '../protocol/node.js';
import { requireNodeOrAdmin } from './http/auth.js';
import { remoteIp } from './http/requester.js';
import { advertiseAddress, frontendUrl as configuredFrontendUrl, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { BootPolicy } from './core/boot.js';
import { type DataDir, ensureApiToken, ensureDataDir } from './datadir.js';
import { createApp } from './http/app.js';
import { imageRoutes } from './http/routes/images.js';
import { bootFileRoutes } from './http/routes/boot.js';
import { ipxeRoute } from './http/routes/ipxe.js';
import { installRoutes } from './http/routes/install.js';
import { metricsRoutes } from './http/routes/metrics.js';
import { HttpServer } from './http/server.js';
import { ImageStore } from './images/store.js';
import { Inventory } from './inventory/store.js';
import type { NodeRecord } from './inventory/types.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { renderEnvFromConfig } from './render/env.js';
import { ProfileService } from './render/service.js';
import type { ProfileStatus } from './render/types.js';
import { SwarmSeeder } from './swarm/seeder.js';
import { PxeService } from './pxe/service.js';
import { TftpServer } from './tftp/server.js';
import { PXE_CFG_DIR } from './pxe/names.js';
import { MulticastSessions } from './multicast/sessions.js';
import { frisbeeRoutes } from './multicast/routes.js';
import { SwarmTracker, trackerRoutes } from './swarm/tracker.js';
import { ImageSync, type SwarmImageJson } from './core/image-sync.js';
import { imageAuthorizer } from './http/image-access.js';
import { bindFailure, probeUdpAddress } from './bind-error.js';
import { DataDirLock } from './lock.js';
import type { HeldLock } from './preflight.js';
import { isKickswarmError } from '../protocol/errors.js';
import { SessionStore } from './auth/sessions.js';
import { type Role, TokenStore } from './auth/tokens.js';
import { dashboardRouters } from './ui/wire.js';

export interface FrontendOptions {
  dataDir: string;
  configFile?: string;
  /** Highest-precedence config values (command-line flags). */
  overrides?: Record<string, unknown>;
  log?: Logger;
  /** Called when discovery registers a node (the console line). */
  onDiscovered?: (node: NodeRecord) => void;
  /** The data dir's serve lock, already taken (by preflightServe); without it the constructor takes it. */
  heldLock?: HeldLock;
}

export interface FrontendAddress {
  httpPort: number;
  tftpPort: number;
  frontendUrl: string;
}

export class Frontend {
  readonly dirs: DataDir;
  readonly config: Config;
  readonly log: Logger;
  readonly inventory: Inventory;
  readonly images: ImageStore;
  readonly metrics = new Metrics();
  private readonly closers: (() => Promise<void> | void)[] = [];
  private readonly lock: DataDirLock;
  private readonly staleLockFrom: number | undefined;
  private closing: Promise<void> | undefined;
  private address: FrontendAddress | undefined;
  private sync: ImageSync | undefined;
  private renderer: ProfileService | undefined;
  private multicast: MulticastSessions | undefined;
  /** Dashboard sessions (also accepted by /api/v1). */
  readonly sessions = new SessionStore();

  /**
   * Makes the data dir if needed and takes its serve lock (ConflictError
   * naming the holder's PID when another server holds it, UnavailableError
   * when the data dir cannot be written); `close()` releases it.
   */
  constructor(private readonly opts: FrontendOptions) {
    this.dirs = ensureDataDir(opts.dataDir);
    this.lock = opts.heldLock?.lock ?? new DataDirLock(this.dirs.root);
    this.staleLockFrom = opts.heldLock ? opts.heldLock.staleFrom : this.lock.acquire().staleFrom;
    this.closers.push(() => this.lock.release());
    try {
      this.config = loadConfig({ dataDir: this.dirs.root, configFile: opts.configFile, overrides: opts.overrides });
      this.log = opts.log ?? createLogger(this.config.logLevel, { format: this.config.logFormat });
      // Queued events: one write transaction per event-loop turn instead of one per kickstart, PXE config and report.
      this.inventory = new Inventory(this.dirs.db, { queueEvents: true, log: this.log.child({ part: 'inventory' }), sessionTtlSeconds: this.config.sessions.ttlSeconds });
      this.images = new ImageStore(this.dirs.images);
    } catch (e) {
      this.lock.release();
      throw e;
    }
  }

  get url(): string {
    if (!this.address) throw new Error('frontend not started');
    return this.address.frontendUrl;
  }

  async start(): Promise<FrontendAddress> {
    try {
      return await this.startParts();
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private async startParts(): Promise<FrontendAddress> {
    const { config: cfg, log, inventory, images, metrics } = this;
    this.closers.push(() => inventory.close());
    if (this.staleLockFrom !== undefined) log.warn({ pid: this.staleLockFrom, lock: this.lock.file }, 'took over the serve lock of a kickswarm serve that is gone');
    const apiToken = ensureApiToken(this.dirs);

    const imageInfo = (ref: string) => images.lookup(ref);
    const renderEnv = (url: string) => renderEnvFromConfig(cfg, { frontendUrl: url, tftpServer: advertiseAddress(cfg), image: imageInfo });
    const renderer = (this.renderer = new ProfileService({ dataDir: this.dirs.root, env: renderEnv(configuredFrontendUrl(cfg)), log: log.child({ part: 'render' }) }));
    await renderer.start();
    this.closers.push(() => renderer.close());
    const policy = new BootPolicy(inventory, log.child({ part: 'boot' }), {
      requireSessions: cfg.sessions.enabled,
      imageFor: (node) => renderer.imageFor(node),
      onDiscovered: this.opts.onDiscovered,
    });

    const tracker = new SwarmTracker({
      log: log.child({ part: 'tracker' }),
      maxPeersPerSwarm: cfg.swarm.maxPeers,
      maxPeersPerAddress: cfg.swarm.maxPeersPerAddress,
      mayAnnounce: cfg.swarm.announceFrom === 'any' ? undefined : announcerCheck(cfg, inventory),
    });
    await tracker.start();
    this.closers.push(() => tracker.close());
    const seeder = new SwarmSeeder({ log: log.child({ part: 'seeder' }), uploadLimit: cfg.swarm.uploadLimitBytes, port: cfg.swarm.peerPort, host: cfg.listen });
    const sync = (this.sync = new ImageSync({ images, tracker, seeder, frontendUrl: () => this.url, log: log.child({ part: 'images' }) }));

    const multicast = new MulticastSessions({
      store: images,
      log: log.child({ part: 'multicast' }),
      groupPool: cfg.multicast.groupPool,
      portPool: cfg.multicast.portPool,
      interfaceAddress: cfg.multicast.interface ?? advertiseAddress(cfg),
      ttl: cfg.multicast.ttl,
      blockSize: cfg.multicast.blockSize,
      rateBytesPerSec: cfg.multicast.rateBytesPerSec,
      minRateBytesPerSec: cfg.multicast.minRateBytesPerSec,
      idleTimeoutMs: cfg.multicast.idleTimeoutSeconds * 1000,
    });
    const multicastInterface = cfg.multicast.interface ?? advertiseAddress(cfg);
    // A configured multicast interface must exist; a derived one that does not only disables multicast.
    await probeUdpAddress(multicastInterface).catch((e: unknown) => {
      const err = bindFailure('multicast', `interface ${multicastInterface}`, 'multicast.interface in kickswarm.yaml', e);
      if (cfg.multicast.interface) throw err;
      log.warn({ err: err.message }, 'multicast sessions will fail: set multicast.interface in kickswarm.yaml');
    });
    this.closers.push(() => multicast.close());
    await multicast.start();
    this.multicast = multicast;

    let url = configuredFrontendUrl(cfg);
    const tftpRoot = cfg.tftpRoot ?? this.dirs.tftpboot;
    fs.mkdirSync(tftpRoot, { recursive: true });
    const tokens = new TokenStore(this.dirs.root, apiToken);
    const dashboard = dashboardRouters({
      dirs: this.dirs,
      config: cfg,
      inventory,
      renderer,
      images,
      sessions: this.sessions,
      roleForToken: (t) => tokens.roleFor(t),
      swarm: () => sync.swarmJson(metrics),
      multicastBytes: () => Object.values(this.multicastBytesSent()).reduce((a, b) => a + b, 0),
      log: log.child({ part: 'ui' }),
    });
    this.closers.push(() => dashboard.close());
    const app = createApp({
      inventory,
      policy,
      renderer,
      config: cfg,
      apiToken,
      omfToken: cfg.omf.token,
      roleForToken: (t) => tokens.roleFor(t),
      sessions: this.sessions,
      onKickstartServed: dashboard.onKickstartServed,
      log: log.child({ part: 'http' }),
      onResponse: (path, status) => {
        if (path === KICKSTART_PATH) metrics.kickstarts.inc({ status: String(status) });
      },
      extraRouters: [
        trackerRoutes(tracker),
        imageRoutes({
          store: images,
          access: requireNodeOrAdmin({
            adminToken: apiToken,
            isPublic: () => cfg.images.public,
            isNode: (ctx) => isApprovedNode(inventory, remoteIp(ctx)),
            what: 'image downloads (images.public is off)',
          }),
          torrentFor: (name) => images.servedTorrent(name, url),
          onBytesSent: (name, n) => metrics.imageHttpBytes.inc({ image: name }, n),
          authorize: imageAuthorizer(policy),
          log: log.child({ part: 'images' }),
        }),
        frisbeeRoutes(multicast),
        bootFileRoutes({ root: tftpRoot, log: log.child({ part: 'boot' }) }),
        ipxeRoute({ policy, inventory, renderer, log: log.child({ part: 'ipxe' }) }),
        metricsRoutes({ metrics, swarm: () => sync.swarmJson(metrics), apiToken, metricsPublic: cfg.metrics.public }),
        installRoutes({
          inventory,
          policy,
          images,
          secrets: (node) => renderer.secrets(node),
          maxCaptureBytes: cfg.capture.maxUploadBytes,
          maxConcurrentCaptures: cfg.capture.maxConcurrentUploads,
          metrics,
          log: log.child({ part: 'install' }),
        }),
        ...dashboard.routers,
      ],
    });
    const http = new HttpServer(app, {
      listen: cfg.listen,
      httpPort: cfg.httpPort,
      backlog: cfg.httpBacklog,
      limits: cfg.http,
      longBodyPaths: [CAPTURE_PATH],
      log: log.child({ part: 'http' }),
    });
    this.closers.push(() => http.close());
    const bound = await http.start().catch((e: unknown) => {
      throw bindFailure('HTTP', `tcp ${cfg.listen}:${cfg.httpPort}`, '--http-port', e);
    });
    url = configuredFrontendUrl(cfg, bound.port);
    renderer.setEnv(renderEnv(url));

    const pxe = new PxeService({ policy, inventory, renderer, tftpRoot, log: log.child({ part: 'pxe' }) });
    const tftp = new TftpServer({
      host: cfg.listen,
      port: cfg.tftpPort,
      root: tftpRoot,
      generated: { dir: PXE_CFG_DIR, file: (name, ip) => pxe.configFor(name, ip) },
      recvBufferBytes: cfg.tftpRecvBufferBytes,
      log: log.child({ part: 'tftp' }),
      maxTransfers: cfg.tftpMaxTransfers,
      maxTransfersPerClient: cfg.tftpMaxTransfersPerClient,
    });
    this.closers.push(() => tftp.close());
    const tftpBound = await tftp.start().catch((e: unknown) => {
      throw isKickswarmError(e) && e.detail?.port === undefined ? e : bindFailure('TFTP', `udp ${cfg.listen}:${cfg.tftpPort}`, '--tftp-port', e);
    });

    this.closers.push(() => seeder.close());
    const seed = await seeder.start().catch((e: unknown) => {
      throw bindFailure('BitTorrent peers', `tcp port ${cfg.swarm.peerPort}`, 'swarm.peerPort in kickswarm.yaml', e);
    });
    tracker.pinSeeder({ ip: advertiseAddress(cfg), port: seed.port, peerId: seed.peerId });
    this.address = { httpPort: bound.port, tftpPort: tftpBound.port, frontendUrl: url };
    await sync.start();
    this.closers.push(() => sync.close());
    metrics.setSources({
      swarm: () => seeder.stats().map((s) => ({ image: s.name, uploadedBytes: s.uploaded, peers: s.peers })),
      nodesByAction: () => countBy(inventory.listNodes().map((n) => n.bootAction)),
    });

    inventory.setRunningFrontend({
      url,
      tftpServer: advertiseAddress(cfg),
      httpPort: bound.port,
      tftpPort: tftpBound.port,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    });
    this.closers.push(() => {
      if (inventory.getRunningFrontend()?.pid === process.pid) inventory.setRunningFrontend(null);
    });
    if (cfg.discovery) {
      inventory.setDiscovery({
        appliance: cfg.discovery.appliance,
        rack: cfg.discovery.rack,
        firstIp: (cfg.discovery.firstIp ?? '10.1.1.1') as never,
        startedAt: new Date().toISOString(),
        autoApprove: cfg.discovery.autoApprove,
        maxPending: cfg.discovery.maxPending,
        perMinute: cfg.discovery.perMinute,
      });
      this.closers.push(() => inventory.setDiscovery(null));
    }
    log.info({ http: bound.port, tftp: tftpBound.port, tftpRoot, frontendUrl: url, dataDir: this.dirs.root }, 'kickswarm frontend started');
    return this.address;
  }

  /** The dashboard's address and a one-time sign-in link (valid 15 minutes, once). */
  signInLink(role: Role = 'admin'): { dashboard: string; signIn: string } {
    return { dashboard: `${this.url}/ui/`, signIn: `${this.url}/ui/login?once=${this.sessions.oneTimeCode(role)}` };
  }

  /** Bytes the multicast sessions sent, per image. */
  multicastBytesSent(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.multicast?.status() ?? []) out[s.image] = (out[s.image] ?? 0) + s.bytesSent;
    return out;
  }

  /** Reloads profiles and templates now (the watcher does it on its own within a second or two). */
  async reloadProfiles(): Promise<ProfileStatus> {
    if (!this.renderer) throw new Error('frontend not started');
    return this.renderer.reload();
  }

  /** Per-image bytes sent by the frontend over the swarm and HTTP, and swarm sizes. */
  async swarmNumbers(): Promise<SwarmImageJson[]> {
    return this.sync ? this.sync.swarmJson(this.metrics) : [];
  }

  /** Stops every part, newest first; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.closers.length) {
        const c = this.closers.pop()!;
        try {
          await c();
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, 'error while shutting down');
        }
      }
    })();
    return this.closing;
  }
}

/** True when `ip` belongs to a registered node that is not awaiting approval. */
function isApprovedNode(inventory: Inventory, ip: Ipv4 | undefined): boolean {
  if (ip === undefined) return false;
  const n = inventory.findByIp(ip);
  return n !== undefined && n.pending !== true;
}

/** Registered node addresses and this host's own (its seeder announces from one of them) may join swarms. */
function announcerCheck(cfg: Config, inventory: Inventory): (ip: string) => boolean {
  const own = new Set([cfg.listen, advertiseAddress(cfg)]);
  for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) own.add(a.address);
  return (ip) => {
    if (own.has(ip)) return true;
    const v4 = ipFromSocketAddress(ip);
    return v4 !== undefined && inventory.findByIp(v4) !== undefined;
  };
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
