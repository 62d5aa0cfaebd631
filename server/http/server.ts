/**
 * Listens for the Koa app. `start()` binds `listen:httpPort` (port 0 picks a
 * free one) with a listen backlog of `backlog` and resolves with the bound
 * port; `close()` stops accepting, closes idle and active keep-alive sockets,
 * and is idempotent.
 *
 * The backlog is how many connections the kernel keeps waiting to be
 * accepted. Node's default of 511 is too few when a rack of installers asks
 * at once: the kernel drops the SYNs beyond it and those clients resend after
 * 1, 3, 7 s. Linux caps the value at net.core.somaxconn (4096 since 5.4,
 * 128 before); the log line says what it became.
 *
 * What one client can make it hold is bounded (`limits`, config `http`):
 * headers must arrive within `headersTimeoutMs`; a request body within
 * `bodyTimeoutMs` of its headers (else 408, a log line, and the connection
 * closed), except on `longBodyPaths` (capture uploads, which have their own
 * idle timeout); a connection on which nothing moves for `idleTimeoutMs` is
 * closed, an idle kept-alive one after `keepAliveTimeoutMs`; beyond
 * `maxConnections` open connections, or `maxConnectionsPerIp` from one
 * address, a new connection gets a 503 and is closed at once.
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Logger } from '../log.js';
import { onSocketClose } from './socket-close.js';

/** Connection limits and timeouts (config `http`). */
export interface HttpLimits {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
}

const TOO_MANY = 'too many connections\n';

/** The defaults of config `http`. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 20_000,
  bodyTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  maxConnections: 4096,
  maxConnectionsPerIp: 64,
};

export interface HttpServerOptions {
  /** Address to bind (config `listen`). */
  listen: string;
  /** Port to bind (config `httpPort`); 0 picks a free one. */
  httpPort: number;
  /** Listen backlog (config `httpBacklog`); default 4096. */
  backlog?: number;
  /** Default DEFAULT_HTTP_LIMITS. */
  limits?: Partial<HttpLimits>;
  /** Exact request paths whose bodies may take longer than `bodyTimeoutMs` (the route bounds them itself). */
  longBodyPaths?: readonly string[];
  log?: Logger;
}

/** The kernel's cap on listen backlogs (Linux), if it can be read. */
function somaxconn(): number | undefined {
  try {
    const n = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export class HttpServer {
  private server: http.Server | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly app: Koa,
    private readonly opts: HttpServerOptions,
  ) {}

  /** Binds and resolves with the bound address. Calling it twice is an error. */
  start(): Promise<{ host: string; port: number }> {
    if (this.server) return Promise.reject(new Error('HttpServer already started'));
    const limits = { ...DEFAULT_HTTP_LIMITS, ...this.opts.limits };
    const handle = this.app.callback();
    const server = http.createServer(
      // requestTimeout stays 0: a whole-request deadline would cut capture uploads; bodyDeadline() bounds bodies instead.
      { requestTimeout: 0, headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) },
      (req, res) => {
        // A request that arrives on a refused connection before it is gone is never handled.
        if (this.refused.has(req.socket)) return void req.socket.destroy();
        this.bodyDeadline(req, res, limits.bodyTimeoutMs);
        void handle(req, res);
      },
    );
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    server.timeout = limits.idleTimeoutMs;
    server.on('connection', (socket: net.Socket) => this.admit(socket, limits));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      this.opts.log?.debug({ err: err.message, code: err.code }, 'malformed HTTP request');
      if (socket.writable && !socket.writableEnded) {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else {
        socket.destroy();
      }
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      const backlog = this.opts.backlog ?? 4096;
      server.listen({ port: this.opts.httpPort, host: this.opts.listen, backlog }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.opts.log?.error({ err }, 'http server error'));
        const a = server.address() as AddressInfo;
        const cap = somaxconn();
        const effective = cap === undefined ? backlog : Math.min(backlog, cap);
        const hint = cap !== undefined && cap < backlog ? { hint: `raise net.core.somaxconn to ${backlog} for a backlog of ${backlog}` } : {};
        this.opts.log?.info({ host: a.address, port: a.port, backlog: effective, ...hint }, 'http listening');
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  private readonly perIp = new Map<string, number>();
  private readonly refused = new WeakSet<net.Socket>();
  private open = 0;
  private lastRefusalLog = 0;
  private refusedSinceLog = 0;

  /** Counts a new connection, or answers 503 and closes it when over a cap. */
  private admit(socket: net.Socket, limits: HttpLimits): void {
    const ip = socket.remoteAddress ?? '';
    const fromIp = this.perIp.get(ip) ?? 0;
    const over =
      this.open >= limits.maxConnections
        ? `${this.open} connections open (at most ${limits.maxConnections})`
        : fromIp >= limits.maxConnectionsPerIp
          ? `${fromIp} connections open from ${ip} (at most ${limits.maxConnectionsPerIp})`
          : undefined;
    if (over) {
      this.refusedSinceLog++;
      const now = Date.now();
      if (now - this.lastRefusalLog >= 10_000) {
        this.opts.log?.warn({ ip, why: over, refused: this.refusedSinceLog }, 'connection refused');
        this.lastRefusalLog = now;
        this.refusedSinceLog = 0;
      }
      this.refused.add(socket);
      socket.on('error', () => undefined);
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: ${TOO_MANY.length}\r\n\r\n${TOO_MANY}`);
      socket.destroySoon();
      return;
    }
    this.open++;
    this.perIp.set(ip, fromIp + 1);
    socket.once('close', () => {
      this.open--;
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
    });
  }

  /**
   * Gives a request's body `ms` to arrive in full (none for longBodyPaths):
   * then a 408 when no answer has started, a log line, and the connection closed.
   */
  private bodyDeadline(req: http.IncomingMessage, res: http.ServerResponse, ms: number): void {
    if (req.complete) return;
    const path = (req.url ?? '').split('?')[0];
    if (this.opts.longBodyPaths?.includes(path ?? '')) return;
    const timer = setTimeout(() => {
      if (req.complete) return;
      const remote = req.socket.remoteAddress ?? '';
      this.opts.log?.warn({ method: req.method, url: (req.url ?? '').slice(0, 512), status: 408, ip: remote.replace(/^::ffff:/, '') }, `request body not received within ${ms} ms; connection closed`);
      if (!res.headersSent && !res.writableEnded) {
        res.writeHead(408, { Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`request body not received within ${ms} ms\n`);
      }
      setTimeout(() => req.socket.destroy(), 1000).unref();
    }, ms);
    timer.unref();
    const forget = onSocketClose(req.socket, () => clearTimeout(timer));
    req.once('end', () => {
      clearTimeout(timer);
      forget();
    });
  }

  /** The bound port, once started. */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /** Stops the server and every connection; safe to call more than once or before start. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const server = this.server;
    if (!server || !server.listening) {
      this.closing = Promise.resolve();
      return this.closing;
    }
    this.closing = new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      server.closeAllConnections();
    });
    return this.closing;
  }
}
