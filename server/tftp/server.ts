/**
 * The TFTP server (npm `tftp` underneath): read-only, the names below the
 * `generated` dir computed by its handler (the PXE configs), every other name a static file below the root
 * under the sandbox rules of ./sandbox.ts. Bad packets, client errors and
 * socket errors are logged and end at most the transfer they belong to.
 *
 * Transfers are admitted by ./admission.ts: each gets a socket bound on
 * `host`, at most `maxTransfersPerClient` per client address (beyond it:
 * error 0) and `maxTransfers` in all (beyond it: unanswered, the client
 * resends); running out of descriptors drops a request, never the process.
 * Each read transfer sends through ./window.ts (RFC 7440 without resending
 * what the client already has).
 *
 * Answers: "File not found" (1) for absent names, directories, unknown nodes;
 * "Access violation" (2) for names outside the sandbox and for every write
 * request; "I/O error" (0) when a read fails mid-way.
 *
 * The listening socket gets a receive buffer of `recvBufferBytes`: every
 * node's first request (RRQ) lands there, and when a whole cluster powers on
 * at once the kernel's default (net.core.rmem_default, 208 KiB: about 250
 * small datagrams) overflows while the server answers them one by one; the
 * dropped nodes resend a second later. The kernel caps the size at
 * net.core.rmem_max (docs/pxe.md); what it granted is logged, and a size it
 * refuses is a warning, never a failed start.
 */
import type dgram from 'node:dgram';
import fsp from 'node:fs/promises';
import net from 'node:net';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import { type Ipv4, ipFromSocketAddress } from '../../protocol/node.js';
import type { Logger } from '../log.js';
import { TransferAdmission } from './admission.js';
import { guardTransfer, installRequestGate } from './guard.js';
import { TFTP_MESSAGES, type TftpLibServer, type TftpRequest, type TftpResponse, createLibServer, listeningSocket, useSendWindow } from './lib.js';
import { checkRequestName, openInRoot } from '../sandbox.js';

/**
 * Files the server computes instead of reading them: every name below `dir`
 * (e.g. `pxelinux.cfg`) is answered by `file(name, remoteIp)`, where null means
 * "file not found". The TFTP server knows nothing of what the names mean.
 */
export interface GeneratedFiles {
  dir: string;
  file: (name: string, remoteIp: Ipv4 | undefined) => Buffer | null;
}

export interface TftpServerOptions {
  /** IP address to bind (`0.0.0.0`, `127.0.0.1`, `::`). */
  host: string;
  /** UDP port; 0 binds a free one (reported by start()). */
  port: number;
  /** The tftpboot directory. */
  root: string;
  /** Names computed on the fly (the PXE configs); none when unset. */
  generated?: GeneratedFiles;
  log: Logger;
  /** SO_RCVBUF of the listening socket in bytes (config `tftpRecvBufferBytes`); 0 or unset: the system default. */
  recvBufferBytes?: number;
  /** Transfers open at once in all (config `tftpMaxTransfers`; default 1000); beyond it requests are dropped unanswered. */
  maxTransfers?: number;
  /** Transfers open at once per client address (config `tftpMaxTransfersPerClient`; default 8); beyond it: TFTP error 0. */
  maxTransfersPerClient?: number;
}

export const DEFAULT_MAX_TRANSFERS = 1000;
export const DEFAULT_MAX_TRANSFERS_PER_CLIENT = 8;

export class TftpServer {
  private readonly opts: TftpServerOptions;
  private readonly log: Logger;
  private lib: TftpLibServer | undefined;
  private admission: TransferAdmission | undefined;
  private realRoot = '';
  private startPromise: Promise<{ port: number }> | undefined;
  private closePromise: Promise<void> | undefined;
  private readonly active = new Set<TftpRequest>();

  constructor(opts: TftpServerOptions) {
    this.opts = opts;
    this.log = opts.log;
  }

  /**
   * Binds and starts answering. Rejects with InvalidInputError for a host that
   * is not an IP address and UnavailableError when the root is missing or the
   * port cannot be bound. Calling it again returns the same result.
   */
  start(): Promise<{ port: number }> {
    if (this.closePromise) return Promise.reject(new UnavailableError('TFTP server is closed'));
    this.startPromise ??= this.doStart();
    return this.startPromise;
  }

  private async doStart(): Promise<{ port: number }> {
    const { host, port, root } = this.opts;
    if (!net.isIP(host)) throw new InvalidInputError(`TFTP listen address must be an IP address, not ${JSON.stringify(host)}`);
    try {
      this.realRoot = await fsp.realpath(root);
      if (!(await fsp.stat(this.realRoot)).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new UnavailableError(`TFTP root ${root} is not usable: ${(e as Error).message}`, { root });
    }
    const lib = createLibServer({ host, port, root: this.realRoot, denyPUT: true }, (req, res) => this.onRequest(req, res));
    this.lib = lib;
    const admission = (this.admission = new TransferAdmission({
      host,
      maxTotal: this.opts.maxTransfers ?? DEFAULT_MAX_TRANSFERS,
      maxPerClient: this.opts.maxTransfersPerClient ?? DEFAULT_MAX_TRANSFERS_PER_CLIENT,
      log: this.log,
    }));
    installRequestGate(listeningSocket(lib), this.log, admission);
    let listening = false;
    lib.on('error', (e: Error) => {
      if (listening) this.log.warn({ err: e.message }, 'tftp socket error');
    });
    try {
      await new Promise<void>((resolve, reject) => {
        lib.once('listening', resolve);
        lib.once('error', reject);
        lib.listen();
      });
    } catch (e) {
      lib.close();
      this.lib = undefined;
      throw new UnavailableError(`cannot listen for TFTP on udp ${host}:${port}: ${(e as Error).message}`, { host, port });
    }
    listening = true;
    const socket = listeningSocket(lib);
    const recvBuffer = this.setRecvBuffer(socket);
    const bound = socket.address().port;
    this.log.info({ host, port: bound, root: this.realRoot, recvBufferBytes: recvBuffer }, 'tftp listening');
    return { port: bound };
  }

  /**
   * Asks for `recvBufferBytes` on the listening socket; returns the size the
   * kernel granted (after a set, Linux reports twice that: the other half is
   * its own bookkeeping), or undefined when it could not be read. Never throws.
   */
  private setRecvBuffer(socket: dgram.Socket): number | undefined {
    const wanted = this.opts.recvBufferBytes ?? 0;
    let set = wanted > 0;
    try {
      if (set) socket.setRecvBufferSize(wanted);
    } catch (e) {
      set = false;
      this.log.warn({ requested: wanted, err: (e as Error).message }, 'tftp: cannot set the receive buffer; keeping the system default');
    }
    let granted: number;
    try {
      const reported = socket.getRecvBufferSize();
      // Linux doubles a size set with SO_RCVBUF (room for its own bookkeeping) and reports that.
      granted = set && process.platform === 'linux' ? Math.floor(reported / 2) : reported;
    } catch {
      return undefined;
    }
    if (set && granted < wanted) {
      this.log.warn(
        { requested: wanted, granted },
        `tftp: the kernel granted a ${granted}-byte receive buffer, not ${wanted}; raise net.core.rmem_max (sysctl -w net.core.rmem_max=${wanted}) so a cluster booting at once does not overflow it`,
      );
    }
    return granted;
  }

  /** Transfers open now (their sockets), in all and for one client address. */
  openTransfers(address?: string): number {
    if (!this.admission) return 0;
    return address === undefined ? this.admission.open : this.admission.openFor(address);
  }

  /** Stops listening and aborts transfers in flight. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      await this.startPromise?.catch(() => undefined);
      this.admission?.close();
      for (const req of this.active) abortQuietly(req, TFTP_MESSAGES.aborted);
      this.active.clear();
      const lib = this.lib;
      this.lib = undefined;
      if (!lib) return;
      await new Promise<void>((resolve) => {
        lib.once('close', () => resolve());
        lib.close();
      });
    })();
    return this.closePromise;
  }

  private onRequest(req: TftpRequest, res: TftpResponse): void {
    const remoteIp = ipFromSocketAddress(req.stats?.remoteAddress);
    const ctx = { peer: `${req.stats?.remoteAddress}:${req.stats?.remotePort}`, file: String(req.file).slice(0, 256) };
    try {
      this.track(req, res, ctx);
      if (!guardTransfer(res, this.log, () => abortQuietly(req, TFTP_MESSAGES.illegalOperation))) {
        this.log.warn(ctx, 'tftp library internals not found: transfer guard not installed');
      }
      if (!useSendWindow(res, req.stats)) this.log.warn(ctx, 'tftp library internals not found: keeping the library window');
      if (this.closePromise) return abortQuietly(req, TFTP_MESSAGES.aborted);
      if (req.method !== 'GET') return this.refuse(req, ctx, 'denied', 'write request');
      const check = checkRequestName(req.file);
      if (!check.ok) return this.refuse(req, ctx, 'denied', check.reason);
      const gen = this.opts.generated;
      if (gen && check.rel.startsWith(`${gen.dir}/`)) return this.serveGenerated(gen, req, res, check.rel.slice(gen.dir.length + 1), remoteIp, ctx);
      this.serveStatic(req, res, check.rel, ctx).catch((e: unknown) => {
        this.log.error({ ...ctx, err: (e as Error)?.stack ?? String(e) }, 'tftp request failed');
        abortQuietly(req, TFTP_MESSAGES.io);
      });
    } catch (e) {
      this.log.error({ ...ctx, err: (e as Error)?.stack ?? String(e) }, 'tftp request failed');
      abortQuietly(req, TFTP_MESSAGES.io);
    }
  }

  private track(req: TftpRequest, res: TftpResponse, ctx: Record<string, unknown>): void {
    this.active.add(req);
    const done = () => this.active.delete(req);
    req.on('close', done);
    req.on('abort', done);
    req.on('error', (e: Error) => {
      done();
      this.log.debug({ ...ctx, err: e?.message }, 'tftp transfer ended with an error');
    });
    res.on('error', (e: Error) => this.log.debug({ ...ctx, err: e?.message }, 'tftp response stream error'));
  }

  private serveGenerated(gen: GeneratedFiles, req: TftpRequest, res: TftpResponse, name: string, remoteIp: Ipv4 | undefined, ctx: Record<string, unknown>): void {
    const buf = gen.file(name, remoteIp);
    if (!buf) return this.refuse(req, ctx, 'not_found', `no ${gen.dir}/${name}`);
    res.setSize(buf.length);
    if (buf.length > 0) res.end(buf);
    else res.end();
  }

  private async serveStatic(req: TftpRequest, res: TftpResponse, rel: string, ctx: Record<string, unknown>): Promise<void> {
    let ended = false;
    const markEnded = () => {
      ended = true;
    };
    req.on('close', markEnded);
    req.on('abort', markEnded);
    req.on('error', markEnded);
    const opened = await openInRoot(this.realRoot, rel);
    if (!opened.ok) return this.refuse(req, ctx, opened.why, opened.reason);
    if (ended || this.closePromise) {
      await opened.handle.close().catch(() => undefined);
      return;
    }
    const rs = opened.handle.createReadStream();
    const stop = () => rs.destroy();
    req.on('close', stop);
    req.on('abort', stop);
    req.on('error', stop);
    rs.on('error', (e: Error) => {
      this.log.warn({ ...ctx, err: e.message }, 'tftp read failed');
      abortQuietly(req, TFTP_MESSAGES.io);
    });
    try {
      res.setSize(opened.size);
    } catch (e) {
      rs.destroy();
      throw e;
    }
    this.log.debug({ ...ctx, size: opened.size }, 'serving static file');
    rs.pipe(res);
  }

  private refuse(req: TftpRequest, ctx: Record<string, unknown>, why: 'denied' | 'not_found', reason: string): void {
    if (why === 'denied') this.log.warn({ ...ctx, reason }, 'tftp access violation');
    else this.log.debug({ ...ctx, reason }, 'tftp file not found');
    abortQuietly(req, why === 'denied' ? TFTP_MESSAGES.accessViolation : TFTP_MESSAGES.notFound);
  }
}

function abortQuietly(req: TftpRequest, message: string): void {
  try {
    req.abort(message);
  } catch {
    // the transfer is already over
  }
}
