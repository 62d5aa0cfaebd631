/**
 * Keeps the swarm in step with the image store: every version of every image
 * (`NAME@N`, each its own torrent) is allowed by the tracker and seeded by the
 * frontend, so a node whose kickstart named a version that is no longer
 * current still finishes; a removed or pruned version stops being either.
 * Versions added by `kickswarm image add` while the server runs are picked up
 * within `intervalMs` (no restart).
 */
import type { ImageStore } from '../images/store.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SwarmSeeder } from '../swarm/seeder.js';
import type { SwarmTracker } from '../swarm/tracker.js';

/** One image's swarm numbers, as `/api/v1/swarm` shows them. */
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

export interface ImageSyncOptions {
  images: ImageStore;
  tracker: SwarmTracker;
  seeder: SwarmSeeder;
  /** The URL the served torrents announce to (known once HTTP is bound). */
  frontendUrl: () => string;
  log: Logger;
  intervalMs?: number;
}

export class ImageSync {
  /** version ref (`NAME@N`) -> info-hash of what is being seeded. */
  private readonly seeded = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: ImageSyncOptions) {}

  async start(): Promise<void> {
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), this.opts.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** One pass; passes never overlap. */
  reconcile(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    const { images, tracker, seeder, log } = this.opts;
    let wanted: Map<string, string>;
    try {
      wanted = new Map(images.allVersions().map((m) => [m.ref, m.infoHash]));
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot list the image store');
      return;
    }
    for (const [name, hash] of this.seeded) {
      if (wanted.get(name) === hash || this.closed) continue;
      await seeder.unseed(name).catch((e: Error) => log.warn({ image: name, err: e.message }, 'unseed failed'));
      tracker.disallow(hash);
      this.seeded.delete(name);
      log.info({ image: name }, 'stopped seeding a removed image');
    }
    for (const [name, hash] of wanted) {
      if (this.seeded.has(name) || this.closed) continue;
      try {
        tracker.allow(hash);
        const torrent = await images.servedTorrent(name, this.opts.frontendUrl());
        await seeder.seed({ name, path: images.path(name), torrent });
        this.seeded.set(name, hash);
        log.info({ image: name, infoHash: hash }, 'seeding image');
      } catch (e) {
        log.warn({ image: name, err: (e as Error).message }, 'cannot seed image; will retry');
      }
    }
  }

  /** Per-version swarm numbers for `/api/v1/swarm` (`image` is `NAME@N`). */
  async swarmJson(metrics: Metrics): Promise<SwarmImageJson[]> {
    const http = await metrics.httpBytesByImage();
    const stats = new Map(this.opts.seeder.stats().map((s) => [s.name, s]));
    return this.opts.images.allVersions().map((m) => {
      const s = stats.get(m.ref);
      const p = this.opts.tracker.peers(m.infoHash);
      return {
        image: m.ref,
        infoHash: m.infoHash,
        swarmBytesSent: s?.uploaded ?? 0,
        httpBytesSent: http[m.ref] ?? 0,
        peers: s?.peers ?? 0,
        seeders: p.seeders,
        leechers: p.leechers,
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
