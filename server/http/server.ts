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
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Logger } from '../log.js';

export interface HttpServerOptions {
  /** Address to bind (config `listen`). */
  listen: string;
  /** Port to bind (config `httpPort`); 0 picks a free one. */
  httpPort: number;
  /** Listen backlog (config `httpBacklog`); default 4096. */
  backlog?: number;
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
    const server = http.createServer({ requestTimeout: 0, headersTimeout: 20_000 }, this.app.callback());
    server.keepAliveTimeout = 5_000;
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      this.opts.log?.debug({ err: err.message, code: err.code }, 'malformed HTTP request');
      if (socket.writable && !socket.writableEnded) {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
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
