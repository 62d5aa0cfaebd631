/**
 * The node's localhost install proxy (ROCKS Avalanche's peer side). Listens on a
 * loopback address only:
 * - `GET|HEAD /install/images/NAME` fetches `NAME.torrent` from the frontend,
 *   joins that swarm and streams the image's bytes in order as pieces verify
 *   (`Range` honoured; concurrent requests share one torrent); no torrent means a
 *   plain HTTP transfer from the frontend;
 * - every other `/install/*` request is relayed to the frontend unchanged;
 * - `GET /_proxy/stats` answers the per-image counters as JSON.
 * While it runs the node is a full peer, and it keeps seeding an image for
 * `linger` seconds after the last local request for it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { sessionAgent } from '../session.js';
import { imagePath, torrentPath } from '../../protocol/api.js';
import { InvalidInputError, NotFoundError, UnavailableError, isKickswarmError } from '../../protocol/errors.js';
import { parseImageRef } from '../../protocol/node.js';
import { forward } from './forward.js';
import { fetchTorrentMeta, type MetaResult } from './meta.js';
import { parseRange } from './range.js';
import { streamRange } from './reader.js';
import { ImageSession, type TorrentMeta } from './session.js';
import { emptyStats, type ImageStats } from './stats.js';
import type { PieceFile } from './file-store.js';
import { destroyClient, type WebTorrentClient } from '../../protocol/webtorrent.js';
import { createSwarmClient } from './swarm-client.js';
import { WebSeed } from './webseed.js';
import { checkProxyOptions, type SwarmProxyOptions } from './options.js';

export type { SwarmProxyOptions } from './options.js';

export class SwarmProxy {
  private readonly opts: ReturnType<typeof checkProxyOptions>;
  private readonly log: Logger;
  private readonly base: string;
  private server: Server | undefined;
  private client: WebTorrentClient | undefined;
  private agent: Agent | undefined;
  private cacheDir: string | undefined;
  private readonly sessions = new Map<string, Promise<ImageSession>>();
  private readonly ready = new Map<string, ImageSession>();
  private readonly metas = new Map<string, Promise<MetaResult>>();
  private readonly images = new Map<string, ImageStats>();
  private closed = false;

  constructor(options: SwarmProxyOptions) {
    this.opts = checkProxyOptions(options);
    this.base = this.opts.frontend.replace(/\/+$/, '');
    this.log = options.log.child({ subsystem: 'proxy' });
  }

  /** Opens the peer port and the local HTTP port; resolves with the latter. */
  async start(): Promise<{ port: number; url: string }> {
    if (this.closed) throw new UnavailableError('proxy is closed');
    if (this.server) return this.address();
    this.cacheDir = this.opts.cacheDir ?? (await mkdtemp(join(tmpdir(), 'kickswarm-proxy-')));
    try {
      const { client, agent } = await createSwarmClient({ peerPort: this.opts.peerPort, localAddress: this.opts.localAddress });
      this.client = client;
      this.agent = this.opts.session ? sessionAgent(agent ?? new Agent(), this.opts.session) : agent;
      client.on('error', (err: Error) => this.log.error({ err: err.message }, 'swarm client error'));
      if (this.opts.localAddress) {
        const own = this.opts.localAddress;
        client.blocked = { contains: (ip: string) => ip === own };
      }
      const server = createServer((req, res) => void this.handle(req, res));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.opts.port, this.opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.server = server;
    } catch (err) {
      await this.close();
      throw err;
    }
    const addr = this.address();
    this.log.info({ url: addr.url, peerPort: this.client?.address()?.port, localAddress: this.opts.localAddress }, 'proxy listening');
    return addr;
  }

  /** Counters for every image requested so far (copies). */
  stats(): ImageStats[] {
    return [...this.images.values()].map((s) => ({ ...s, bannedPeers: [...s.bannedPeers], fallbacks: [...s.fallbacks] }));
  }

  /** Idempotent: stops serving, leaves every swarm, deletes downloaded copies it made. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closing;
    }
    const sessions = await Promise.allSettled([...this.sessions.values()]);
    this.sessions.clear();
    this.ready.clear();
    await Promise.all(sessions.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
    if (this.client) await destroyClient(this.client);
    this.client = undefined;
    await this.agent?.destroy().catch(() => undefined);
    if (this.cacheDir && !this.opts.cacheDir) await rm(this.cacheDir, { recursive: true, force: true });
  }

  /**
   * Opens image `name` in this process (the installer's direct path): the
   * shared session, held until `release()` (the linger starts then), or
   * undefined when the image has no usable torrent (the caller moves it over
   * HTTP). `pieces` says where a session this call creates keeps its pieces
   * (default: the proxy's cache dir); a session already open is shared as it is.
   */
  async openImage(name: string, pieces?: (meta: TorrentMeta) => Promise<PieceFile | undefined>): Promise<{ session: ImageSession; release: () => void } | undefined> {
    if (!this.server) await this.start();
    const stats = this.images.get(name) ?? emptyStats(name);
    this.images.set(name, stats);
    stats.requests++;
    const found = await this.meta(name);
    if (found.kind === 'none') {
      if (stats.fallbacks.at(-1) !== found.reason) stats.fallbacks.push(found.reason);
      return undefined;
    }
    stats.infoHash = found.meta.infoHash;
    stats.length = found.meta.length;
    const imageUrl = new URL(`${this.base}/install/images/${encodeURIComponent(name)}`);
    const session = await this.session(found.meta, stats, imageUrl, this.sessions.has(found.meta.infoHash) ? undefined : await pieces?.(found.meta));
    let released = false;
    return {
      session,
      release: () => {
        if (released) return;
        released = true;
        session.release();
      },
    };
  }

  private address(): { port: number; url: string } {
    const a = this.server!.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return { port, url: `http://${host}:${port}/` };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort(new Error('client went away'));
    });
    try {
      await this.route(req, res, ac.signal);
    } catch (err) {
      if (ac.signal.aborted) return;
      if (res.headersSent) {
        this.log.warn({ url: req.url, err: (err as Error).message }, 'transfer aborted');
        res.destroy();
        return;
      }
      const status = statusFor(err);
      if (status >= 500) this.log.warn({ url: req.url, err: (err as Error).message }, 'request failed');
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${oneLine((err as Error).message)}\n`);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const raw = req.url ?? '/';
    const path = raw.split('?', 1)[0]!;
    const method = (req.method ?? 'GET').toUpperCase();
    if (path === '/_proxy/stats' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(this.stats()));
      return;
    }
    if (!path.startsWith('/install/')) throw new NotFoundError(`${oneLine(path)} is not served here (only /install/*)`);
    const segments = path.split('/');
    if (/%2f|%5c|%00/i.test(path) || path.includes('\\') || segments.some((s) => /^(\.|%2e){1,2}$/i.test(s))) {
      throw new InvalidInputError('path has dot segments or encoded separators');
    }
    const m = /^\/install\/images\/([^/]*)$/.exec(path);
    if (m && !m[1]!.endsWith('.torrent')) {
      if (method !== 'GET' && method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${method} is not allowed on images\n`);
        return;
      }
      let name: string;
      try {
        name = decodeURIComponent(m[1]!);
      } catch {
        throw new InvalidInputError('image name is not valid percent-encoding');
      }
      return this.serveImage(req, res, parseImageRef(name).ref, signal);
    }
    await forward(req, res, new URL(this.base + raw), { dispatcher: this.agent, signal });
  }

  private async serveImage(req: IncomingMessage, res: ServerResponse, name: string, signal: AbortSignal): Promise<void> {
    const stats = this.images.get(name) ?? emptyStats(name);
    this.images.set(name, stats);
    stats.requests++;
    const found = await this.meta(name);
    const imageUrl = new URL(`${this.base}${imagePath(name)}`);
    if (found.kind === 'none') {
      if (stats.fallbacks.at(-1) !== found.reason) stats.fallbacks.push(found.reason);
      this.log.warn({ image: name, reason: found.reason }, 'no usable torrent; plain HTTP from the frontend');
      const onBytes = (n: number) => {
        stats.fromWebSeed += n;
        stats.served += n;
      };
      return forward(req, res, imageUrl, { dispatcher: this.agent, onBytes, signal });
    }
    const meta = found.meta;
    stats.infoHash = meta.infoHash;
    stats.length = meta.length;
    const range = parseRange(req.headers.range, meta.length);
    if (range.kind === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${meta.length}`, 'content-type': 'text/plain; charset=utf-8' });
      res.end('range not satisfiable\n');
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'content-length': String(range.end - range.start + 1),
      etag: `"${meta.infoHash}"`,
    };
    if (range.kind === 'partial') headers['content-range'] = `bytes ${range.start}-${range.end}/${meta.length}`;
    const status = range.kind === 'partial' ? 206 : 200;
    if (req.method === 'HEAD') {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const session = await this.session(meta, stats, imageUrl);
    try {
      res.writeHead(status, headers);
      await streamRange(session, range.start, range.end, res, signal);
      res.end();
    } finally {
      session.release();
    }
  }

  private meta(name: string): Promise<MetaResult> {
    let p = this.metas.get(name);
    if (!p) {
      p = fetchTorrentMeta(`${this.base}${torrentPath(name)}`, name, this.agent);
      this.metas.set(name, p);
      const clear = () => this.metas.delete(name);
      p.then(clear, clear);
    }
    return p;
  }

  private async session(meta: TorrentMeta, stats: ImageStats, imageUrl: URL, pieces?: PieceFile): Promise<ImageSession> {
    for (;;) {
      if (this.closed || !this.client || !this.cacheDir) throw new UnavailableError('proxy is closed');
      let p = this.sessions.get(meta.infoHash);
      if (!p) {
        p = ImageSession.open(meta, {
          client: this.client,
          pieces: pieces ?? { file: join(this.cacheDir, meta.infoHash, 'image'), onDestroy: 'delete' },
          localAddress: this.opts.localAddress,
          webSeed: new WebSeed(meta, { url: imageUrl.href, dispatcher: this.agent }),
          stats,
          stallMs: this.opts.stallTimeout * 1000,
          lingerMs: this.opts.linger * 1000,
          log: this.log,
          onExpire: (s) => this.expire(s),
        });
        this.sessions.set(meta.infoHash, p);
        const entry = p;
        p.then(
          (s) => this.sessions.get(meta.infoHash) === entry && this.ready.set(meta.infoHash, s),
          () => this.sessions.get(meta.infoHash) === entry && this.sessions.delete(meta.infoHash),
        );
      }
      const s = await p;
      if (this.sessions.get(meta.infoHash) !== p) continue;
      s.acquire();
      return s;
    }
  }

  private expire(s: ImageSession): void {
    if (s.busy) return;
    if (this.ready.get(s.meta.infoHash) === s) {
      this.ready.delete(s.meta.infoHash);
      this.sessions.delete(s.meta.infoHash);
    }
    s.stats.leaves++;
    this.log.info({ image: s.meta.name }, 'linger over; leaving swarm');
    void s.close();
  }
}

function statusFor(err: unknown): number {
  if (!isKickswarmError(err)) return 500;
  switch (err.code) {
    case 'invalid_input':
      return 400;
    case 'not_found':
      return 404;
    case 'forbidden':
      return 403;
    case 'unavailable':
    case 'corrupt_image':
      return 502;
    default:
      return 500;
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 300);
}
