/**
 * One image's torrent on the node: joined once however many local requests read
 * it, a full peer while it runs, and removed `linger` after the last request.
 *
 * Fallback rules (the web seed gives verified whole pieces over HTTP):
 * - the session falls back when the tracker cannot be used and no peer is
 *   connected, or when a reader waits `stallTimeout` without any piece
 *   verifying; in fallback a reader takes each missing piece it needs (plus a
 *   few ahead) from the web seed; the swarm keeps running, and the first piece
 *   it verifies ends the fallback;
 * - outside fallback, a piece that no connected peer has (once the session has
 *   been up min(stallTimeout, 5 s)) is taken from the web seed at once, with the
 *   following pieces no peer has.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { UnavailableError } from '../../protocol/errors.js';
import { PieceMemory } from '../../protocol/piece-memory.js';
import { fileStore, type FileChunkStore, type PieceFile } from './file-store.js';
import { WebSeedFiller, abortable } from './filler.js';
import { PeerGuard } from './guard.js';
import { shuffled } from '../shuffle.js';
import type { ImageStats } from './stats.js';
import { bindOutgoing, coalescePicking, containPeerFaults, deselectPieces, dropPeersWithBadHaves, parseWires, type Picking, selectPieces, usePieceMemory } from '../../protocol/webtorrent-private.js';
import { failedPiece, isFrontendPeer, type Torrent, type WebTorrentClient, type Wire } from '../../protocol/webtorrent.js';
import { describe, type WebSeed } from './webseed.js';

export interface TorrentMeta {
  name: string;
  infoHash: string;
  length: number;
  pieceLength: number;
  hashes: string[];
  torrent: Buffer;
}

export interface SessionDeps {
  client: WebTorrentClient;
  /** Where the pieces are kept (a cache file, or a scratch region of the install target). */
  pieces: PieceFile;
  localAddress?: string;
  webSeed: WebSeed;
  stats: ImageStats;
  stallMs: number;
  lingerMs: number;
  log: Logger;
  onExpire: (session: ImageSession) => void;
}

/** Most background selections per image (see selectBackground). */
const SEGMENTS = 32;
/** How long a session stays after its last local request when the linger is 0. */
export const IDLE_GRACE_MS = 10_000;

/** verified: the piece is in; stalled: nothing verified for stallTimeout; missing: no connected peer has it; fallback: the session fell back. */
type WaitResult = 'verified' | 'stalled' | 'missing' | 'fallback';

export class ImageSession {
  readonly torrent: Torrent;
  readonly guard: PeerGuard;
  private readonly events = new EventEmitter();
  private readonly filler: WebSeedFiller;
  private active = 0;
  private linger: NodeJS.Timeout | undefined;
  private announceRetry: NodeJS.Timeout | undefined;
  private announceFailures = 0;
  private lastProgress = Date.now();
  private fallbackReason: string | undefined;
  private readonly openedAt = Date.now();
  /** How long after joining a piece no connected peer has is taken from the web seed (half the stall timeout at most, so it is never mistaken for a stall). */
  private readonly graceMs: number;
  private order: number[] = [];
  private readonly picking: Picking;
  /** The buffers received pieces are assembled in, reused once the store has written them. */
  readonly memory = new PieceMemory();
  private store: FileChunkStore | undefined;

  private constructor(
    readonly meta: TorrentMeta,
    private readonly deps: SessionDeps,
  ) {
    const { client, log, stats } = deps;
    this.events.setMaxListeners(0);
    this.graceMs = Math.min(deps.stallMs / 2, 5000);
    this.torrent = client.add(meta.torrent, {
      store: fileStore(deps.pieces, { memory: this.memory, onCreate: (store) => (this.store = store) }),
      storeCacheSlots: 0,
      strategy: 'sequential',
      deselect: true,
      bitfield: new Uint8Array(Math.ceil(meta.hashes.length / 8)),
      destroyStoreOnDestroy: true,
    });
    usePieceMemory(this.torrent, this.memory);
    bindOutgoing(this.torrent, deps.localAddress);
    this.picking = coalescePicking(this.torrent);
    parseWires(this.torrent);
    dropPeersWithBadHaves(this.torrent, meta.hashes.length);
    containPeerFaults(this.torrent, (err, peer) => log.warn({ peer, err: err.message }, 'peer disconnected: its message broke a handler'));
    this.guard = new PeerGuard(this.torrent, log, (peer) => stats.bannedPeers.push(peer));
    const lookahead = Math.min(16, Math.max(2, Math.ceil((4 << 20) / meta.pieceLength)));
    this.filler = new WebSeedFiller(this.torrent, deps.webSeed, stats, lookahead);
    const t = this.torrent;
    t.setMaxListeners(0);
    t.on('wire', (wire: Wire) => this.onWire(wire));
    t.on('verified', (index: number) => this.onVerified(index));
    t.on('warning', (err: Error) => this.onWarning(err));
    t.on('trackerAnnounce', () => (this.announceFailures = 0));
    t.on('error', (err: Error) => log.error({ image: meta.name, err: err.message }, 'torrent failed'));
    t.on('done', () => {
      stats.complete = true;
      this.memory.drain();
      log.info({ image: meta.name, fromPeers: stats.fromPeers, fromWebSeed: stats.fromWebSeed }, 'image complete');
    });
  }

  /** Joins the swarm for `meta`; resolves once the torrent is ready to serve reads. */
  static async open(meta: TorrentMeta, deps: SessionDeps): Promise<ImageSession> {
    const s = new ImageSession(meta, deps);
    deps.stats.joins++;
    await new Promise<void>((resolve, reject) => {
      if (s.torrent.ready) return resolve();
      s.torrent.once('ready', () => resolve());
      s.torrent.once('close', () => reject(new UnavailableError(`torrent of ${meta.name} closed before it was ready`)));
    });
    s.selectBackground();
    deps.log.info({ image: meta.name, infoHash: meta.infoHash, pieces: meta.hashes.length }, 'joined swarm');
    return s;
  }

  get pieceLength(): number {
    return this.meta.pieceLength;
  }

  get stats(): ImageStats {
    return this.deps.stats;
  }

  /** True while a local request uses the session. */
  get busy(): boolean {
    return this.active > 0;
  }

  /** A local request starts using the session (cancels a pending linger). */
  acquire(): void {
    this.active++;
    clearTimeout(this.linger);
    this.linger = undefined;
  }

  /**
   * A local request is done; the last one starts the linger countdown. A linger
   * of 0 still keeps the session IDLE_GRACE_MS, so a Range reader's next request
   * (it asks again at once) finds the pieces it already has instead of joining
   * anew and fetching them again; the installer's own run closes the proxy as
   * soon as it is done, so `run --linger 0` still seeds nothing afterwards.
   */
  release(): void {
    if (--this.active > 0) return;
    this.linger = setTimeout(() => this.deps.onExpire(this), this.deps.lingerMs > 0 ? this.deps.lingerMs : IDLE_GRACE_MS);
    this.linger.unref();
  }

  /** Every piece index once, in the order this node's background download asks for them. */
  pieceOrder(): readonly number[] {
    return this.order;
  }

  has(index: number): boolean {
    return !!this.torrent.bitfield?.get(index);
  }

  /** Raises pieces `from..to` above the background download. */
  prioritise(from: number, to: number): void {
    selectPieces(this.torrent, from, to, 1);
  }

  unprioritise(from: number, to: number): void {
    deselectPieces(this.torrent, from, to);
  }

  /**
   * Stops (true) or resumes (false) asking peers for pieces; a consumer that
   * falls behind the download holds it instead of letting the pieces it has
   * not used yet fall out of the store's memory pool.
   */
  holdDownload(held: boolean): void {
    if (held) this.picking.hold();
    else this.picking.release();
  }

  /** Resolves once piece `index` is verified locally, from the swarm or the web seed; `last` bounds read-ahead. */
  async ensurePiece(index: number, last: number, signal: AbortSignal): Promise<void> {
    let webSeedFailures = 0;
    while (!this.has(index)) {
      signal.throwIfAborted();
      if (this.torrent.destroyed) throw new UnavailableError(`torrent of ${this.meta.name} was closed`);
      let want: ((i: number) => boolean) | undefined;
      if (!this.fallbackReason) {
        const r = await this.waitSwarm(index, signal);
        if (r === 'stalled') this.enterFallback(`no piece verified for ${this.deps.stallMs / 1000}s`);
        if (r !== 'missing') continue;
        this.note('pieces no connected peer has came from the web seed');
        want = (i) => !this.anyPeerHas(i);
      }
      try {
        await abortable(this.filler.fill(index, last, want), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        webSeedFailures++;
        this.deps.log.warn({ image: this.meta.name, piece: index, err: describe(err) }, 'web seed fallback failed');
        if (webSeedFailures >= 3) throw err;
        await this.waitSwarm(index, signal, false);
      }
    }
  }

  /** Bytes `offset..offset+length-1` of verified piece `index` copied into `into` at `at` (no buffer of its own). */
  readInto(index: number, offset: number, length: number, into: Uint8Array, at: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const store = this.store;
      if (!store || this.torrent.destroyed) return reject(new UnavailableError(`torrent of ${this.meta.name} was closed`));
      store.readInto(index, offset, length, into, at, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Leaves the swarm and deletes the local copy. */
  async close(): Promise<void> {
    clearTimeout(this.linger);
    clearTimeout(this.announceRetry);
    await new Promise<void>((resolve) => this.torrent.destroy({ destroyStore: true }, () => resolve()));
    if (this.deps.pieces.onDestroy === 'delete') await rm(dirname(this.deps.pieces.file), { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * Queues the whole image for background download in at most SEGMENTS
   * segments (each at least 1 MiB) taken in an order of this node's own
   * (random), so nodes that start together fetch different parts and can trade
   * them; readers' windows come first. Few segments keep webtorrent's piece
   * picker, which walks every selection for every request, cheap.
   */
  private selectBackground(): void {
    const n = this.meta.hashes.length;
    const per = Math.max(1, Math.ceil((1 << 20) / this.meta.pieceLength), Math.ceil(n / SEGMENTS));
    const segments: [number, number][] = [];
    for (let from = 0; from < n; from += per) segments.push([from, Math.min(n - 1, from + per - 1)]);
    const order: number[] = [];
    for (const [from, to] of shuffled(segments)) {
      selectPieces(this.torrent, from, to, 0);
      for (let i = from; i <= to; i++) order.push(i);
    }
    this.order = order;
  }

  /** Waits for piece `index` from the swarm; `missingOk` lets it end early when no connected peer has the piece. */
  private waitSwarm(index: number, signal: AbortSignal, missingOk = true): Promise<WaitResult> {
    return new Promise((resolve, reject) => {
      const t = this.torrent;
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const done = (fn: () => void) => {
        clearTimeout(timer);
        t.off('verified', onVerified);
        t.off('close', onClose);
        this.events.off('fallback', onFallback);
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onVerified = (i: number) => i === index && done(() => resolve('verified'));
      const onFallback = () => done(() => resolve('fallback'));
      const onClose = () => done(() => reject(new UnavailableError(`torrent of ${this.meta.name} was closed`)));
      const onAbort = () => done(() => reject(signal.reason));
      const check = () => {
        const now = Date.now();
        const idle = now - Math.max(started, this.lastProgress);
        if (idle >= this.deps.stallMs) return done(() => resolve('stalled'));
        const settled = now - this.openedAt >= this.graceMs;
        if (missingOk && settled && !this.anyPeerHas(index)) return done(() => resolve('missing'));
        timer = setTimeout(check, Math.min(this.deps.stallMs - idle, settled ? 1000 : this.graceMs - (now - this.openedAt)));
      };
      t.on('verified', onVerified);
      t.once('close', onClose);
      this.events.once('fallback', onFallback);
      signal.addEventListener('abort', onAbort, { once: true });
      t.critical(index, Math.min(index + 1, this.meta.hashes.length - 1));
      check();
    });
  }

  private enterFallback(reason: string): void {
    if (this.fallbackReason || this.torrent.done) return;
    this.fallbackReason = reason;
    this.note(reason);
    this.events.emit('fallback');
  }

  /** Records why bytes came from the web seed (once per reason in a row). */
  private note(reason: string): void {
    const all = this.deps.stats.fallbacks;
    if (all.at(-1) === reason) return;
    all.push(reason);
    this.deps.log.warn({ image: this.meta.name, reason }, 'using the web seed');
  }

  /** A connected peer has piece `index`, or the frontend is connected (it holds every piece, though it offers only a few at a time). */
  private anyPeerHas(index: number): boolean {
    return this.torrent.wires.some((w) => !w.destroyed && (!!w.peerPieces?.get(index) || isFrontendPeer(w)));
  }

  private onWire(wire: Wire): void {
    if (wire.peerId === this.deps.client.peerId || this.guard.isBanned(wire)) return wire.destroy();
    this.guard.watch(wire);
    wire.on('download', (n: number) => (this.deps.stats.fromPeers += n));
    wire.on('upload', (n: number) => (this.deps.stats.uploadedToPeers += n));
  }

  private onVerified(index: number): void {
    this.lastProgress = Date.now();
    const fromSwarm = !this.filler.takeInjected(index);
    this.guard.onVerified(index);
    if (fromSwarm && this.fallbackReason) {
      this.deps.log.info({ image: this.meta.name, after: this.fallbackReason }, 'swarm delivers again; leaving fallback');
      this.fallbackReason = undefined;
    }
  }

  private onWarning(err: Error): void {
    const piece = failedPiece(err);
    if (piece !== undefined) {
      this.guard.onFailed(piece);
      this.deps.stats.hashFailures++;
      return;
    }
    const why = describe(err);
    this.deps.log.warn({ image: this.meta.name, err: why }, 'tracker announce failed');
    const peers = this.torrent.wires.filter((w) => !w.destroyed).length;
    if (peers === 0) this.enterFallback(`tracker unusable (${why}) and no peers`);
    if (this.announceRetry || this.torrent.destroyed) return;
    const delay = Math.min(30_000, 2_000 * 2 ** this.announceFailures++);
    this.announceRetry = setTimeout(() => {
      this.announceRetry = undefined;
      if (!this.torrent.destroyed) this.torrent.discovery?.tracker?.update();
    }, delay);
    this.announceRetry.unref();
  }
}
