/**
 * Swarm test kit: random image files, torrents made with create-torrent, and a
 * tiny frontend on 127.0.0.1:0 (Koa) with the real tracker and seeder, a
 * Range-capable `/install/images/NAME` (+ `NAME.torrent`) route and an echo route.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { request as httpRequest, type Server } from 'node:http';
import { basename, join } from 'node:path';
import Koa from 'koa';
import Router from '@koa/router';
import createTorrentModule from 'create-torrent';
import { request } from 'undici';
import { silentLogger } from '../../server/log.js';
import { SwarmSeeder } from '../../server/swarm/seeder.js';
import { SwarmTracker, trackerRoutes } from '../../server/swarm/tracker.js';
import { parseRange } from '../../node-installer/proxy/range.js';

import parseTorrentModule from 'parse-torrent';
import { sha256 } from './hash.js';

type CreateTorrent = (path: string, opts: Record<string, unknown>, cb: (err: Error | null, torrent: Buffer) => void) => void;
const createTorrent = createTorrentModule as unknown as CreateTorrent;

const parseTorrent = parseTorrentModule as unknown as (buf: Uint8Array) => Promise<{ infoHash: string }>;

export async function infoHashOf(torrent: Buffer): Promise<string> {
  return (await parseTorrent(torrent)).infoHash;
}

/** A file of `bytes` random bytes; returns its path, content and sha256. */
export async function makeImage(dir: string, name: string, bytes: number): Promise<{ path: string; data: Buffer; sha256: string }> {
  const data = randomBytes(bytes);
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, data, sha256: sha256(data) };
}

export interface TorrentSpec {
  /** Announce URL (tracker); use a dead port to simulate a tracker that is down. */
  announce: string;
  /** Web seed URL, or none. */
  urlList?: string;
  pieceLength?: number;
  /** Name in the info dictionary (default: the file's basename). */
  name?: string;
}

/** A private single-file torrent of `path`, as create-torrent makes it. */
export function makeTorrent(path: string, spec: TorrentSpec): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    createTorrent(
      path,
      {
        name: spec.name ?? basename(path),
        private: true,
        announceList: [[spec.announce]],
        urlList: spec.urlList ? [spec.urlList] : [],
        pieceLength: spec.pieceLength ?? 64 * 1024,
        createdBy: 'kickswarm-test',
      },
      (err, t) => (err ? reject(err) : resolve(Buffer.from(t))),
    ),
  );
}

interface ServedImage {
  path: string;
  torrent?: Buffer;
}

/** The test frontend: tracker + seeder + image routes + `/install/sbin/echo`. */
export class TestFrontend {
  readonly tracker = new SwarmTracker({ log: silentLogger(), announceIntervalSeconds: 5 });
  readonly seeder = new SwarmSeeder({ log: silentLogger() });
  readonly images = new Map<string, ServedImage>();
  /** Body bytes served from `/install/images/NAME` (the web seed), per name. */
  readonly webSeedBytes = new Map<string, number>();
  /** Source addresses of requests, in order. */
  readonly sources: string[] = [];
  url = '';
  private server: Server | undefined;

  async start(): Promise<this> {
    await this.tracker.start();
    await this.seeder.start();
    const app = new Koa();
    app.silent = true;
    const router = new Router();
    router.all('/install/sbin/echo', async (ctx) => {
      const chunks: Buffer[] = [];
      for await (const c of ctx.req) chunks.push(c as Buffer);
      ctx.set('x-echo', 'yes');
      ctx.body = {
        method: ctx.method,
        url: ctx.url,
        headers: ctx.headers,
        body: Buffer.concat(chunks).toString(),
        remote: ctx.req.socket.remoteAddress,
      };
    });
    router.get('/install/images/:file', (ctx) => this.serve(ctx));
    router.head('/install/images/:file', (ctx) => this.serve(ctx));
    app.use(async (ctx, next) => {
      this.sources.push(String(ctx.req.socket.remoteAddress).replace(/^::ffff:/, ''));
      await next();
    });
    app.use(trackerRoutes(this.tracker).routes());
    app.use(router.routes());
    this.server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => this.server!.once('listening', () => resolve()));
    const addr = this.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    return this;
  }

  get announce(): string {
    return `${this.url}/announce`;
  }

  imageUrl(name: string): string {
    return `${this.url}/install/images/${name}`;
  }

  /** Serves `path` as image `name` (with `torrent` as NAME.torrent when given). */
  serveImage(name: string, path: string, torrent?: Buffer): void {
    this.images.set(name, { path, torrent });
  }

  /** Serves, registers with the tracker and seeds image `name`. */
  async publish(name: string, path: string, torrent: Buffer, infoHash: string): Promise<void> {
    this.serveImage(name, path, torrent);
    this.tracker.allow(infoHash);
    await this.seeder.seed({ name, path, torrent });
  }

  async close(): Promise<void> {
    await this.seeder.close();
    await this.tracker.close();
    if (this.server) {
      const s = this.server;
      this.server = undefined;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  private async serve(ctx: Koa.Context): Promise<void> {
    const file = String(ctx.params.file);
    if (file.endsWith('.torrent')) {
      const img = this.images.get(file.slice(0, -'.torrent'.length));
      if (!img?.torrent) return void (ctx.status = 404);
      ctx.type = 'application/x-bittorrent';
      ctx.body = img.torrent;
      return;
    }
    const img = this.images.get(file);
    if (!img) return void (ctx.status = 404);
    const st = await stat(img.path).catch(() => undefined);
    if (!st) return void (ctx.status = 503);
    const size = st.size;
    const range = parseRange(ctx.get('range') || undefined, size);
    ctx.set('accept-ranges', 'bytes');
    ctx.type = 'application/octet-stream';
    if (range.kind === 'unsatisfiable') {
      ctx.status = 416;
      ctx.set('content-range', `bytes */${size}`);
      return;
    }
    if (range.kind === 'partial') {
      ctx.status = 206;
      ctx.set('content-range', `bytes ${range.start}-${range.end}/${size}`);
    }
    ctx.length = range.end - range.start + 1;
    if (ctx.method === 'HEAD') return;
    this.webSeedBytes.set(file, (this.webSeedBytes.get(file) ?? 0) + ctx.length);
    ctx.body = createReadStream(img.path, { start: range.start, end: range.end });
  }
}

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP exchange, body read fully. */
export async function fetchBytes(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Fetched> {
  const res = await request(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: opts.body,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

/** One exchange over node:http with the path sent exactly as given (no URL normalisation, any headers). */
export function rawRequest(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Fetched> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The error `p` rejects with; throws when it resolves instead. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
