/**
 * A real kickswarm HTTP server on 127.0.0.1 (port 0) over a real Inventory in a
 * temp SQLite file (events queued, as the frontend's), the real BootPolicy and
 * the fake Renderer (./renderer.ts); plus clients that send from any 127.x.y.z source address,
 * as raw bytes when needed.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type Router from '@koa/router';
import pino from 'pino';
import { ConfigSchema } from '../../server/config/schema.js';
import { BootPolicy } from '../../server/core/boot.js';
import { createApp } from '../../server/http/app.js';
import { type HttpLimits, HttpServer } from '../../server/http/server.js';
import { Inventory } from '../../server/inventory/store.js';
import type { NodeRecord } from '../../server/inventory/types.js';
import { type BootAction, parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { FakeRenderer } from './renderer.js';
import { tmpDir } from './tmp.js';

export interface TestRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** Strings and Buffers are sent as is; objects as JSON. */
  body?: string | Buffer | object;
  /** Source address, any 127.x.y.z (default 127.0.0.1). */
  from?: string;
  /** Sends `Authorization: Bearer <token>`; `true` means the server's token. */
  token?: string | true;
  /** Sends `X-Kickswarm-Session: <session>`. */
  session?: string;
}

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = unknown>(): T;
}

export interface TestServer {
  url: string;
  port: number;
  token: string;
  inventory: Inventory;
  policy: BootPolicy;
  renderer: FakeRenderer;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  addNode(name: string, mac: string, ip: string, bootAction?: BootAction, appliance?: string): NodeRecord;
  /** The node's install session token ('' when it has none). */
  sessionOf(name: string): string;
  request(req: TestRequest): Promise<TestResponse>;
  /**
   * Sends `bytes` on a fresh connection and reads until the server closes it
   * (ask for `Connection: close`); resolves with the status (0 if none) and the bytes.
   */
  raw(bytes: string | Buffer, from?: string): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  maxInFlight?: number;
  /** Default: the configuration's default. */
  maxLoopDelayMs?: number;
  retryAfterSeconds?: number;
  apiToken?: string;
  /** A second API token with the `viewer` role (read-only). */
  viewerToken?: string;
  /** Token the OMF routes accept besides the admin token. */
  omfToken?: string;
  extraRouters?: Router[];
  /** Routers built from the server's own inventory, policy and log (mounted after extraRouters). */
  routersFor?: (parts: { inventory: Inventory; policy: BootPolicy; log: pino.Logger }) => Router[];
  /** Address to bind (default 127.0.0.1); `::` for a dual-stack server. */
  listen?: string;
  /** Connection limits and timeouts (default: the configuration's). */
  limits?: Partial<HttpLimits>;
  /**
   * Whether node routes need the install session token (config
   * `sessions.enabled`). Default false: the anaconda fallback on source IP,
   * which the route tests exercise; session tests turn it on.
   */
  sessions?: boolean;
  /** The image a node's profile installs, as the renderer would answer (default: none). */
  imageFor?: (node: NodeRecord) => { name: string; method: string } | undefined;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = tmpDir('kickswarm-http-');
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  // As `kickswarm serve` does: events queued and written once per event-loop turn.
  const inventory = new Inventory(path.join(dir, 'inventory.sqlite'), { queueEvents: true, log });
  const policy = new BootPolicy(inventory, log, { requireSessions: opts.sessions ?? false, ...(opts.imageFor ? { imageFor: opts.imageFor } : {}) });
  const renderer = new FakeRenderer();
  const token = opts.apiToken ?? 'test-token-0123456789';
  const app = createApp({
    inventory,
    policy,
    renderer: renderer.http(),
    config: {
      kickstart: {
        maxInFlight: opts.maxInFlight ?? 4,
        maxLoopDelayMs: opts.maxLoopDelayMs ?? ConfigSchema.parse({}).kickstart.maxLoopDelayMs,
        retryAfterSeconds: opts.retryAfterSeconds ?? 7,
      },
    },
    apiToken: token,
    ...(opts.viewerToken ? { roleForToken: (t: string) => (t === token ? 'admin' : t === opts.viewerToken ? 'viewer' : undefined) } : {}),
    omfToken: opts.omfToken,
    log,
    extraRouters: [...(opts.extraRouters ?? []), ...(opts.routersFor?.({ inventory, policy, log }) ?? [])],
  });
  const server = new HttpServer(app, { listen: opts.listen ?? '127.0.0.1', httpPort: 0, limits: opts.limits, log });
  const { port } = await server.start();

  const request = (req: TestRequest): Promise<TestResponse> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      let body: Buffer | undefined;
      if (Buffer.isBuffer(req.body)) body = req.body;
      else if (typeof req.body === 'string') body = Buffer.from(req.body);
      else if (req.body !== undefined) {
        body = Buffer.from(JSON.stringify(req.body));
        headers['content-type'] ??= 'application/json';
      }
      if (req.token !== undefined) headers.authorization = `Bearer ${req.token === true ? token : req.token}`;
      if (req.session !== undefined) headers['x-kickswarm-session'] = req.session;
      if (body) headers['content-length'] = String(body.length);
      const r = http.request({ host: '127.0.0.1', port, method: req.method ?? 'GET', path: req.path, headers, localAddress: req.from ?? '127.0.0.1', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(body);
    });

  const raw = (bytes: string | Buffer, from = '127.0.0.1'): Promise<{ status: number; text: string }> =>
    new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port, localAddress: from });
      const chunks: Buffer[] = [];
      const done = (): void => {
        const text = Buffer.concat(chunks).toString('latin1');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        resolve({ status: m ? Number(m[1]) : 0, text });
      };
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', () => undefined);
      sock.on('close', done);
      sock.setTimeout(5000, () => sock.destroy());
      sock.write(bytes);
    });

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    inventory,
    policy,
    renderer,
    logs,
    addNode: (name, mac, ip, bootAction = 'os', appliance = 'compute') => inventory.addNode({ name: parseNodeName(name), mac: parseMac(mac), ip: parseIpv4(ip), appliance, bootAction }),
    sessionOf: (name) => inventory.session(parseNodeName(name))?.token ?? '',
    request,
    raw,
    close: async () => {
      await server.close();
      inventory.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
