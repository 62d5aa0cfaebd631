/**
 * The frontend's multicast sessions, one per image: `getAddress(image)` starts
 * a MulticastSender for the image (or reuses the running one) on a group:port
 * from the pools, and a session that has neither heard from a receiver nor
 * sent anything for `idleTimeoutMs` ends and frees its pair. An image that was
 * replaced under the same name gets a fresh session. Knows the image store
 * only through `get` and `path`; nothing of profiles or inventory.
 */
import crypto from 'node:crypto';
import { NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { DEFAULT_BLOCK_SIZE, type FrisbeeAddress } from '../../protocol/frisbee.js';
import { HEADER_SIZE, INDEX_ENTRY_SIZE } from '../../protocol/image-format.js';
import { type ImageMeta, ImageStore } from '../images/store.js';
import type { Logger } from '../log.js';
import { DEFAULT_GROUP_POOL, DEFAULT_PORT_POOL, type GroupPort, PairPool, parseGroupPool, parsePortPool } from './pool.js';
import { MulticastSender, type SenderStats } from './sender.js';

export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

export interface MulticastSessionsOptions {
  store: Pick<ImageStore, 'get' | 'path'>;
  log: Logger;
  /** Multicast groups handed out, `FIRST-LAST` or one address (default 239.255.77.1-239.255.77.254). */
  groupPool?: string;
  /** UDP ports handed out, `FIRST-LAST` or one port (default 7700-7799). */
  portPool?: string;
  /** Local address of the cluster-facing interface (default 127.0.0.1). */
  interfaceAddress?: string;
  /** Multicast TTL (default 1). */
  ttl?: number;
  /** Loop datagrams back to receivers on this host (default true). */
  loopback?: boolean;
  /** DATA payload bytes (default 1400). */
  blockSize?: number;
  /** Per-session send-rate cap in bytes/s (default 100 MB/s). */
  rateBytesPerSec?: number;
  minRateBytesPerSec?: number;
  /** A session with no receiver traffic and nothing to send for this long ends (default 300 s). */
  idleTimeoutMs?: number;
  /** How often idle sessions are looked for (default min(idle / 4, 10 s)). */
  sweepIntervalMs?: number;
}

export interface SessionStatus extends SenderStats {
  image: string;
  mcAddress: string;
  mcPort: number;
  sessionId: number;
  imageId: number;
  blockSize: number;
  startedAt: string;
  idleSecondsLeft: number;
}

interface Session {
  image: string;
  /** Raw SHA-256 and creation time of the image the session serves. */
  identity: string;
  pair: GroupPort;
  sender: MulticastSender;
  address: FrisbeeAddress;
  startedAt: Date;
  touchedAt: number;
}

export class MulticastSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly starting = new Map<string, Promise<Session>>();
  /** Sessions that left `sessions` but whose pair is not back in the pool yet. */
  private readonly ending = new Set<Promise<void>>();
  private readonly pool: PairPool;
  private readonly idleMs: number;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly log: Logger;

  /** Throws InvalidInputError when a pool does not parse. */
  constructor(private readonly o: MulticastSessionsOptions) {
    this.pool = new PairPool(parseGroupPool(o.groupPool ?? DEFAULT_GROUP_POOL), parsePortPool(o.portPool ?? DEFAULT_PORT_POOL));
    this.idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.log = o.log.child({ subsystem: 'multicast' });
  }

  /** Starts the idle sweeper (sessions themselves start on demand). */
  async start(): Promise<void> {
    if (this.sweeper || this.closed) return;
    this.sweeper = setInterval(() => void this.sweep(), this.o.sweepIntervalMs ?? Math.min(this.idleMs / 4, 10_000));
    this.sweeper.unref();
  }

  /**
   * The session for `image`, started when none runs. InvalidInputError for a
   * bad name, NotFoundError for an unknown image, UnavailableError when the
   * pools are exhausted or the sockets cannot be opened.
   */
  async getAddress(image: string): Promise<FrisbeeAddress> {
    if (this.closed) throw new UnavailableError('multicast is shutting down');
    let meta: ImageMeta;
    try {
      meta = this.o.store.get(image);
    } catch (err) {
      if (err instanceof NotFoundError && this.sessions.has(image)) await this.end(image, 'image removed');
      throw err;
    }
    // Sessions are per reference as asked: `NAME@N` is one version's session; `NAME` follows the current version.
    const name = ImageStore.parseRef(image).ref;
    const cur = this.sessions.get(name);
    const identity = `${meta.sha256}@${meta.createdAt}`;
    if (cur && cur.identity === identity) {
      cur.touchedAt = Date.now();
      return { ...cur.address, rateBytesPerSec: cur.sender.stats().rate };
    }
    if (cur) await this.end(name, 'image replaced');
    let p = this.starting.get(name);
    if (!p) {
      p = this.open(name, identity, this.o.store.path(meta.ref)).finally(() => this.starting.delete(name));
      this.starting.set(name, p);
    }
    return (await p).address;
  }

  private async open(name: string, identity: string, imagePath: string): Promise<Session> {
    let pair = this.pool.take();
    if (!pair && this.ending.size > 0) {
      // A session that is closing still holds its pair: wait for it rather than refuse.
      await Promise.allSettled([...this.ending]);
      pair = this.pool.take();
    }
    if (!pair) throw new UnavailableError('every multicast group:port in the pools is in use; try again when a session ends');
    const sessionId = crypto.randomBytes(4).readUInt32LE(0);
    const sender = new MulticastSender({
      imagePath,
      group: pair.group,
      port: pair.port,
      sessionId,
      interfaceAddress: this.o.interfaceAddress,
      ttl: this.o.ttl,
      loopback: this.o.loopback,
      blockSize: this.o.blockSize ?? DEFAULT_BLOCK_SIZE,
      rateBytesPerSec: this.o.rateBytesPerSec,
      minRateBytesPerSec: this.o.minRateBytesPerSec,
      log: this.log.child({ image: name }),
    });
    try {
      await sender.start();
    } catch (err) {
      this.pool.release(pair);
      throw err;
    }
    if (this.closed) {
      await sender.close();
      this.pool.release(pair);
      throw new UnavailableError('multicast is shutting down');
    }
    const h = sender.header;
    const s: Session = {
      image: name,
      identity,
      pair,
      sender,
      startedAt: new Date(),
      touchedAt: Date.now(),
      address: {
        image: name,
        mcAddress: pair.group,
        mcPort: pair.port,
        sessionId,
        imageId: sender.imageId,
        chunkSize: h.chunkSize,
        chunkCount: h.chunkCount,
        storedChunks: h.storedChunks,
        indexEnd: HEADER_SIZE + h.storedChunks * INDEX_ENTRY_SIZE,
        blockSize: sender.blockSize,
        rateBytesPerSec: sender.rateCap,
        ttl: this.o.ttl ?? 1,
      },
    };
    this.sessions.set(name, s);
    this.log.info({ image: name, group: pair.group, port: pair.port, sessionId }, 'multicast session started');
    return s;
  }

  private idleLeftMs(s: Session, now: number): number {
    if (s.sender.busy) return this.idleMs;
    return this.idleMs - (now - Math.max(s.touchedAt, s.sender.lastActivityAt));
  }

  /** Every session, by image name. */
  status(): SessionStatus[] {
    const now = Date.now();
    return [...this.sessions.values()]
      .sort((a, b) => a.image.localeCompare(b.image))
      .map((s) => ({
        image: s.image,
        mcAddress: s.pair.group,
        mcPort: s.pair.port,
        sessionId: s.address.sessionId,
        imageId: s.address.imageId,
        blockSize: s.address.blockSize,
        startedAt: s.startedAt.toISOString(),
        idleSecondsLeft: Math.max(0, Math.round(this.idleLeftMs(s, now) / 1000)),
        ...s.sender.stats(),
      }));
  }

  /** Ends one image's session; false when none runs. */
  async end(image: string, why = 'ended'): Promise<boolean> {
    const s = this.sessions.get(image);
    if (!s) return false;
    this.sessions.delete(image);
    const closing = s.sender.close().finally(() => this.pool.release(s.pair));
    this.ending.add(closing);
    try {
      await closing;
    } finally {
      this.ending.delete(closing);
    }
    const st = s.sender.stats();
    this.log.info({ image, why, bytesSent: st.bytesSent, chunksResent: st.chunksResent, receivers: st.receivers }, 'multicast session ended');
    return true;
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (this.idleLeftMs(s, now) <= 0) await this.end(s.image, 'idle timeout');
    }
  }

  /** Ends every session and stops the sweeper. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.sweeper) clearInterval(this.sweeper);
      await Promise.allSettled([...this.starting.values()]);
      await Promise.all([...this.sessions.keys()].map((n) => this.end(n, 'shutdown')));
    })();
    return this.closing;
  }
}
