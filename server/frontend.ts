/**
 * The composition root of `kickswarm serve`: config -> inventory -> boot policy
 * -> renderer -> image store, swarm and multicast -> HTTP and TFTP transports.
 * Only this file wires parts together; each part takes its dependencies as
 * arguments. `start()` brings everything up (HTTP first, so the advertised URL
 * knows its port), `close()` takes it down in reverse and is idempotent.
 */
import fs from 'node:fs';
import { KICKSTART_PATH } from '../protocol/api.js';
import { advertiseAddress, frontendUrl as configuredFrontendUrl, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { BootPolicy } from './core/boot.js';
import { type DataDir, ensureApiToken, ensureCaptureSecret, ensureDataDir } from './datadir.js';
import { createApp } from './http/app.js';
import { imageRoutes } from './http/routes/images.js';
import { bootFileRoutes } from './http/routes/boot.js';
import { installRoutes } from './http/routes/install.js';
import { captureToken, captureTokenVerifier } from './cluster/capture-token.js';
import { metricsRoutes, type SwarmImageJson } from './http/routes/metrics.js';
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
import { MulticastSessions } from './multicast/sessions.js';
import { frisbeeRoutes } from './multicast/routes.js';
import { SwarmTracker, trackerRoutes } from './swarm/tracker.js';
import { ImageSync } from './core/image-sync.js';

export interface FrontendOptions {
  dataDir: string;
  configFile?: string;
  /** Highest-precedence config values (command-line flags). */
  overrides?: Record<string, unknown>;
  log?: Logger;
  /** Called when discovery registers a node (the console line). */
  onDiscovered?: (node: NodeRecord) => void;
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
  private closing: Promise<void> | undefined;
  private address: FrontendAddress | undefined;
  private sync: ImageSync | undefined;
  private renderer: ProfileService | undefined;
  private multicast: MulticastSessions | undefined;

  constructor(private readonly opts: FrontendOptions) {
    this.dirs = ensureDataDir(opts.dataDir);
    this.config = loadConfig({ dataDir: this.dirs.root, configFile: opts.configFile, overrides: opts.overrides });
    this.log = opts.log ?? createLogger(this.config.logLevel);
    // Queued events: one write transaction per event-loop turn instead of one per kickstart, PXE config and report.
    this.inventory = new Inventory(this.dirs.db, { queueEvents: true, log: this.log.child({ part: 'inventory' }) });
    this.images = new ImageStore(this.dirs.images);
  }

  get url(): string {
    if (!this.address) throw new Error('frontend not started');
    return this.address.frontendUrl;
  }

  async start(): Promise<FrontendAddress> {
    const { config: cfg, log, inventory, images, metrics } = this;
    this.closers.push(() => inventory.close());
    const apiToken = ensureApiToken(this.dirs);
    const captureSecret = ensureCaptureSecret(this.dirs);
    const policy = new BootPolicy(inventory, log.child({ part: 'boot' }), { onDiscovered: this.opts.onDiscovered });

    const imageInfo = (name: string) => {
      if (!images.has(name)) return undefined;
      const m = images.get(name);
      return { name: m.name, sha256: m.sha256, rawSize: m.rawSize };
    };
    const renderEnv = (url: string) =>
      renderEnvFromConfig(cfg, { frontendUrl: url, tftpServer: advertiseAddress(cfg), image: imageInfo, captureToken: (name) => captureToken(captureSecret, name) });
    const renderer = (this.renderer = new ProfileService({ dataDir: this.dirs.root, env: renderEnv(configuredFrontendUrl(cfg)), log: log.child({ part: 'render' }) }));
    await renderer.start();
    this.closers.push(() => renderer.close());

    const tracker = new SwarmTracker({ log: log.child({ part: 'tracker' }) });
    await tracker.start();
    this.closers.push(() => tracker.close());
    const seeder = new SwarmSeeder({ log: log.child({ part: 'seeder' }), uploadLimit: cfg.swarm.uploadLimitBytes, port: cfg.swarm.peerPort });
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
    await multicast.start();
    this.closers.push(() => multicast.close());
    this.multicast = multicast;

    let url = configuredFrontendUrl(cfg);
    const tftpRoot = cfg.tftpRoot ?? this.dirs.tftpboot;
    fs.mkdirSync(tftpRoot, { recursive: true });
    const app = createApp({
      inventory,
      policy,
      renderer,
      config: cfg,
      apiToken,
      log: log.child({ part: 'http' }),
      onResponse: (path, status) => {
        if (path === KICKSTART_PATH) metrics.kickstarts.inc({ status: String(status) });
      },
      extraRouters: [
        trackerRoutes(tracker),
        imageRoutes({
          store: images,
          torrentFor: (name) => images.servedTorrent(name, url),
          onBytesSent: (name, n) => metrics.imageHttpBytes.inc({ image: name }, n),
          log: log.child({ part: 'images' }),
        }),
        frisbeeRoutes(multicast),
        bootFileRoutes({ root: tftpRoot, log: log.child({ part: 'boot' }) }),
        metricsRoutes({ metrics, swarm: () => sync.swarmJson(metrics) }),
        installRoutes({ inventory, policy, images, captureTokens: captureTokenVerifier(captureSecret), metrics, log: log.child({ part: 'install' }) }),
      ],
    });
    const http = new HttpServer(app, { listen: cfg.listen, httpPort: cfg.httpPort, backlog: cfg.httpBacklog, log: log.child({ part: 'http' }) });
    const bound = await http.start();
    this.closers.push(() => http.close());
    url = configuredFrontendUrl(cfg, bound.port);
    renderer.setEnv(renderEnv(url));

    const pxe = new PxeService({ policy, inventory, renderer, tftpRoot, log: log.child({ part: 'pxe' }) });
    const tftp = new TftpServer({ host: cfg.listen, port: cfg.tftpPort, root: tftpRoot, pxe, recvBufferBytes: cfg.tftpRecvBufferBytes, log: log.child({ part: 'tftp' }) });
    const tftpBound = await tftp.start();
    this.closers.push(() => tftp.close());

    await seeder.start();
    this.closers.push(() => seeder.close());
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
      });
      this.closers.push(() => inventory.setDiscovery(null));
    }
    log.info({ http: bound.port, tftp: tftpBound.port, tftpRoot, frontendUrl: url, dataDir: this.dirs.root }, 'kickswarm frontend started');
    return this.address;
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

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
