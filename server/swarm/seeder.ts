/**
 * The frontend's seeder: one webtorrent client (TCP only) that seeds every image
 * in place from its file. Torrents must be single-file, private, and announce to
 * the frontend's tracker (register the info-hash with `SwarmTracker.allow()`
 * before `seed()`, or the first announce is refused).
 */
import { stat } from 'node:fs/promises';
import parseTorrentModule from 'parse-torrent';
import { CorruptImageError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';
import { readOnlyFileStore } from './file-store.js';
import { SuperSeeding } from './super-seed.js';
import { containPeerFaults, createClient, dropPeersWithBadHaves, parseWires } from '../../protocol/webtorrent-private.js';
import { destroyClient, failedPiece, frontendPeerId, type Torrent, type WebTorrentClient, type Wire } from '../../protocol/webtorrent.js';

/** Upload slots of a super-seeded image: every peer stays unchoked. */
const MAX_UPLOAD_SLOTS = 10_000;

interface ParsedTorrent {
  infoHash: string;
  length: number;
  pieceLength: number;
  files: { length: number }[];
  pieces: string[];
}
const parseTorrent = parseTorrentModule as unknown as (buf: Uint8Array) => Promise<ParsedTorrent>;

export interface SeedImage {
  name: string;
  /** The image file; the torrent's single file. */
  path: string;
  /** The .torrent bytes. */
  torrent: Buffer;
}

export interface SwarmSeederOptions {
  log: Logger;
  /** TCP port peers connect to (0 = any free port). */
  port?: number;
  /** Address the peer port binds (default: every address). */
  host?: string;
  /** Upload cap for all images together, bytes/s (undefined or negative = unlimited). */
  uploadLimit?: number;
  /** Hash every piece of the file before seeding (default false: the image store vouches for its files). */
  verify?: boolean;
  /** Seconds between tracker re-announces after an announce failed (default 10). */
  announceRetrySeconds?: number;
  /** Offer each peer a few pieces at a time, rarest first, so each piece leaves the frontend about once (default true; super-seed.ts). */
  superSeed?: boolean;
}

export interface SeedStats {
  name: string;
  infoHash: string;
  length: number;
  /** Piece payload bytes sent to peers since seeding started. */
  uploaded: number;
  /** Open peer connections. */
  peers: number;
}

interface Seeded {
  name: string;
  infoHash: string;
  length: number;
  torrent: Torrent;
  uploaded: number;
  retry?: NodeJS.Timeout;
}

export class SwarmSeeder {
  private client: WebTorrentClient | undefined;
  private starting: Promise<WebTorrentClient> | undefined;
  private readonly seeded = new Map<string, Seeded>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: SwarmSeederOptions) {
    this.log = opts.log;
  }

  /** Opens the peer port; resolves with it and the seeder's peer ID (40 hex digits). */
  async start(): Promise<{ port: number; peerId: string }> {
    const client = await this.ensureClient();
    return { port: client.address()?.port ?? 0, peerId: client.peerId };
  }

  /** Seeds `image` (replacing an earlier seed of the same name with another torrent); resolves once it is seeding. */
  async seed(image: SeedImage): Promise<SeedStats> {
    const parsed = await parseTorrent(image.torrent).catch((err: Error) => {
      throw new InvalidInputError(`torrent of image ${image.name} does not parse: ${err.message}`);
    });
    if (!parsed?.infoHash || parsed.files.length !== 1) {
      throw new InvalidInputError(`torrent of image ${image.name} must describe exactly one file`);
    }
    const st = await stat(image.path).catch(() => undefined);
    if (!st?.isFile()) throw new NotFoundError(`image file ${image.path} does not exist`);
    if (st.size !== parsed.length) {
      throw new CorruptImageError(`${image.path} is ${st.size} bytes but its torrent describes ${parsed.length}`);
    }
    const existing = this.seeded.get(image.name);
    if (existing?.infoHash === parsed.infoHash) return this.statsOf(existing);
    if (existing) await this.unseed(image.name);

    const client = await this.ensureClient();
    const verify = this.opts.verify ?? false;
    const superSeed = this.opts.superSeed ?? true;
    // Super-seeding gives each peer its own pieces to pass on: choking some peers would strand theirs.
    const torrent = client.add(image.torrent, { store: readOnlyFileStore(image.path), skipVerify: !verify, ...(superSeed ? { uploads: MAX_UPLOAD_SLOTS } : {}) });
    dropPeersWithBadHaves(torrent, parsed.pieces.length);
    containPeerFaults(torrent, (err, peer) => this.log.warn({ image: image.name, peer, err: err.message }, 'peer disconnected: its message broke a handler'));
    parseWires(torrent);
    if (superSeed) new SuperSeeding(torrent, { pieces: parsed.pieces.length, pieceLength: parsed.pieceLength });
    const entry: Seeded = { name: image.name, infoHash: parsed.infoHash, length: parsed.length, torrent, uploaded: 0 };
    this.seeded.set(image.name, entry);
    torrent.on('wire', (wire: Wire) => wire.on('upload', (n: number) => (entry.uploaded += n)));
    torrent.on('warning', (err: Error) => this.onWarning(entry, err));
    torrent.on('error', (err: Error) => this.log.warn({ image: image.name, err: err.message }, 'seed failed'));
    try {
      await new Promise<void>((resolve, reject) => {
        if (torrent.ready) return resolve();
        torrent.once('ready', () => resolve());
        torrent.once('error', reject);
        torrent.once('close', () => reject(new Error('torrent closed before it was ready')));
      });
    } catch (err) {
      this.seeded.delete(image.name);
      throw new CorruptImageError(`cannot seed ${image.name}: ${(err as Error).message}`);
    }
    if (!torrent.done) {
      await this.unseed(image.name);
      throw new CorruptImageError(`${image.path} does not match its torrent (piece hashes differ)`);
    }
    this.log.info({ image: image.name, infoHash: parsed.infoHash, bytes: parsed.length }, 'seeding');
    return this.statsOf(entry);
  }

  /** Stops seeding `name` (no-op when not seeded); the image file is left untouched. */
  async unseed(name: string): Promise<void> {
    const entry = this.seeded.get(name);
    if (!entry) return;
    this.seeded.delete(name);
    clearTimeout(entry.retry);
    await new Promise<void>((resolve) => entry.torrent.destroy({ destroyStore: false }, () => resolve()));
    this.log.info({ image: name }, 'stopped seeding');
  }

  /** Changes the upload cap (bytes/s; undefined or negative = unlimited). */
  setUploadLimit(bytesPerSecond: number | undefined): void {
    this.opts.uploadLimit = bytesPerSecond;
    this.client?.throttleUpload(bytesPerSecond === undefined || bytesPerSecond < 0 ? -1 : bytesPerSecond);
  }

  /** Counters for every seeded image. */
  stats(): SeedStats[] {
    return [...this.seeded.values()].map((e) => this.statsOf(e));
  }

  /** Idempotent; stops all seeds and closes the peer port. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.seeded.values()) clearTimeout(e.retry);
    this.seeded.clear();
    const client = this.client ?? (await this.starting?.catch(() => undefined));
    this.client = undefined;
    this.starting = undefined;
    if (client) await destroyClient(client);
  }

  private statsOf(e: Seeded): SeedStats {
    return { name: e.name, infoHash: e.infoHash, length: e.length, uploaded: e.uploaded, peers: e.torrent.numPeers ?? 0 };
  }

  private onWarning(entry: Seeded, err: Error): void {
    if (failedPiece(err) !== undefined) return;
    this.log.warn({ image: entry.name, err: err.message }, 'tracker announce failed; retrying');
    if (entry.retry || this.closed) return;
    entry.retry = setTimeout(
      () => {
        entry.retry = undefined;
        if (!entry.torrent.destroyed) entry.torrent.discovery?.tracker?.update();
      },
      (this.opts.announceRetrySeconds ?? 10) * 1000,
    );
    entry.retry.unref();
  }

  private async ensureClient(): Promise<WebTorrentClient> {
    if (this.closed) throw new Error('seeder is closed');
    if (this.client) return this.client;
    this.starting ??= createClient({
      peerId: frontendPeerId(),
      torrentPort: this.opts.port ?? 0,
      host: this.opts.host,
      webSeeds: false,
      uploadLimit: this.opts.uploadLimit !== undefined && this.opts.uploadLimit >= 0 ? this.opts.uploadLimit : -1,
    }).then((client) => {
      client.on('error', (err: Error) => this.log.error({ err: err.message }, 'seeder client error'));
      this.client = client;
      return client;
    });
    return this.starting;
  }
}
