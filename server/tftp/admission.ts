/**
 * Admission of TFTP requests into transfers: the only place a transfer socket
 * is made.
 *
 * Every datagram the request gate hands on to the npm `tftp` library makes the
 * library open a socket of its own; without this, a failed bind (no file
 * descriptors or ports left) was emitted as an `error` nothing listened for,
 * and killed the process, and the socket bound every address whatever
 * `--listen` said. Here, for each admitted request:
 * - the transfer socket is made and bound (port 0 on the listen address)
 *   before the library sees the request, with an error listener from the
 *   start; a failed bind drops the request (the client resends it later),
 *   logs, and frees the slot;
 * - the library is then handed that bound socket (lib.ts `withTransferSocket`);
 * - the slot is freed when the socket closes (the library closes it when the
 *   transfer ends, fails, times out or is aborted).
 *
 * Caps: at most `maxPerClient` transfers open at once per client address
 * (beyond it: TFTP error 0 "Too many transfers from this address" from the
 * listening socket, no socket made) and `maxTotal` in all (beyond it the
 * request is dropped unanswered, so PXE firmware resends it a few seconds
 * later instead of giving up on an error: a cluster powering on at once
 * waits, it does not fail).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../log.js';
import { withTransferSocket } from './lib.js';

export interface AdmissionOptions {
  /** The address transfer sockets bind (the server's listen address). */
  host: string;
  maxTotal: number;
  maxPerClient: number;
  log: Logger;
}

export type Refuse = (code: number, message: string) => void;

/** Logs one line per reason at most every 5 s, with how many were folded in. */
class QuietLog {
  private readonly last = new Map<string, { at: number; folded: number }>();
  constructor(private readonly log: Logger) {}
  warn(reason: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    const s = this.last.get(reason);
    if (s && now - s.at < 5000) {
      s.folded++;
      return;
    }
    this.last.set(reason, { at: now, folded: 0 });
    this.log.warn({ ...fields, alsoSinceLastLine: s?.folded ?? 0 }, reason);
  }
}

export class TransferAdmission {
  private total = 0;
  private readonly perClient = new Map<string, number>();
  /** Sockets whose slot is still taken (freed once, on their close). */
  private readonly sockets = new Set<dgram.Socket>();
  private readonly family: 'udp4' | 'udp6';
  private readonly quiet: QuietLog;
  private closed = false;

  constructor(private readonly opts: AdmissionOptions) {
    this.family = net.isIP(opts.host) === 6 ? 'udp6' : 'udp4';
    this.quiet = new QuietLog(opts.log);
  }

  /** Transfers (sockets) open now. */
  get open(): number {
    return this.total;
  }

  /** Transfers open now for one client address. */
  openFor(address: string): number {
    return this.perClient.get(address) ?? 0;
  }

  /**
   * Admits one request from `rinfo`: binds its transfer socket, then calls
   * `run` (which must hand the request to the library synchronously), or
   * refuses/drops it under the caps. Never throws.
   */
  admit(rinfo: dgram.RemoteInfo, run: () => void, refuse: Refuse): void {
    const client = rinfo.address;
    const peer = `${rinfo.address}:${rinfo.port}`;
    if (this.closed) return;
    if (this.openFor(client) >= this.opts.maxPerClient) {
      this.quiet.warn('tftp: refused a request, too many transfers from one address', { peer, open: this.openFor(client), cap: this.opts.maxPerClient });
      refuse(0, 'Too many transfers from this address');
      return;
    }
    if (this.total >= this.opts.maxTotal) {
      this.quiet.warn('tftp: dropped a request, transfer cap reached (the client will resend it)', { peer, cap: this.opts.maxTotal });
      return;
    }
    let socket: dgram.Socket;
    try {
      socket = dgram.createSocket(this.family);
    } catch (e) {
      this.quiet.warn('tftp: cannot make a transfer socket; dropped a request', { peer, err: (e as Error).message });
      return;
    }
    this.take(client, socket);
    let handedOver = false;
    socket.on('error', (e: Error) => {
      if (handedOver) {
        this.opts.log.debug({ peer, err: e.message }, 'tftp transfer socket error');
        return;
      }
      this.quiet.warn('tftp: cannot bind a transfer socket (out of file descriptors or ports?); dropped a request', { peer, host: this.opts.host, err: e.message });
      closeQuietly(socket);
    });
    try {
      socket.bind(0, this.opts.host, () => {
        if (this.closed) return closeQuietly(socket);
        handedOver = true;
        try {
          if (!withTransferSocket(socket, run)) closeQuietly(socket);
        } catch (e) {
          this.opts.log.warn({ peer, err: (e as Error)?.message }, 'tftp library failed on a request');
          closeQuietly(socket);
        }
      });
    } catch (e) {
      this.quiet.warn('tftp: cannot bind a transfer socket; dropped a request', { peer, err: (e as Error).message });
      closeQuietly(socket);
    }
  }

  /** Stops admitting; a socket still binding is closed instead of handed to the library. Idempotent. */
  close(): void {
    this.closed = true;
  }

  private take(client: string, socket: dgram.Socket): void {
    this.total++;
    this.perClient.set(client, this.openFor(client) + 1);
    this.sockets.add(socket);
    socket.once('close', () => {
      if (!this.sockets.delete(socket)) return;
      this.total--;
      const n = this.openFor(client) - 1;
      if (n > 0) this.perClient.set(client, n);
      else this.perClient.delete(client);
    });
  }
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
