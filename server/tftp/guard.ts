/**
 * Guards around the npm `tftp` library's sockets, for inputs it mishandles.
 *
 * The request gate sits in front of the library's handler on the listening
 * socket: it refuses write requests with "Access violation" (the library
 * answers code 0 and, before refusing, marks the file busy for readers),
 * checks the raw requested name against the sandbox rules before the library
 * path.normalize()s it, drops datagrams from source port 0 (the library would
 * throw synchronously trying to answer them) and ERROR packets (never answered,
 * RFC 1350), answers any other non-request with "Illegal TFTP operation" itself,
 * passes read requests through the admission (./admission.ts: caps, and the
 * transfer socket bound where told before the library sees the request), and
 * contains anything the library throws.
 *
 * The transfer guard sits in front of one transfer's socket: datagrams from
 * any other address or port get "Unknown transfer ID" and do not disturb the
 * transfer (the library does not check), runts are dropped, and anything the
 * library throws ends that transfer only. Repeated ACKs are the sending
 * window's business (./window.ts).
 */
import type dgram from 'node:dgram';
import type { Logger } from '../log.js';
import { type TftpResponse, transferOf } from './lib.js';
import type { TransferAdmission } from './admission.js';
import { checkRequestName } from '../sandbox.js';

export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 error codes used here. */
export const TFTP_ERROR = { notDefined: 0, notFound: 1, accessViolation: 2, illegalOperation: 4, unknownTid: 5 } as const;

type MessageListener = (msg: Buffer, rinfo: dgram.RemoteInfo) => void;

export function errorPacket(code: number, message: string): Buffer {
  const text = Buffer.from(message.replace(/[^\x20-\x7e]/g, '?'), 'ascii');
  const buf = Buffer.alloc(text.length + 5);
  buf.writeUInt16BE(OP.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  text.copy(buf, 4);
  return buf;
}

/** The filename field of a RRQ/WRQ as sent (bytes as latin1), or undefined when it has no terminating NUL. */
export function requestedName(msg: Buffer): string | undefined {
  if (msg.length < 3) return undefined;
  const end = msg.indexOf(0, 2);
  return end < 0 ? undefined : msg.toString('latin1', 2, end);
}

function sendQuietly(socket: dgram.Socket, buf: Buffer, rinfo: dgram.RemoteInfo): void {
  if (rinfo.port === 0) return;
  try {
    socket.send(buf, rinfo.port, rinfo.address, () => undefined);
  } catch {
    // socket already closed: nothing to tell the peer
  }
}

function takeListeners(socket: dgram.Socket): MessageListener[] {
  const listeners = socket.listeners('message') as MessageListener[];
  socket.removeAllListeners('message');
  return listeners;
}

function peer(rinfo: dgram.RemoteInfo): string {
  return `${rinfo.address}:${rinfo.port}`;
}

/** Puts the request gate in front of the library's listener(s) on the listening socket. */
export function installRequestGate(socket: dgram.Socket, log: Logger, admission: TransferAdmission): void {
  const inner = takeListeners(socket);
  socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (rinfo.port === 0) {
      log.warn({ peer: peer(rinfo), length: msg.length }, 'dropped datagram from source port 0');
      return;
    }
    const op = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
    if (op === OP.ERROR) {
      log.debug({ peer: peer(rinfo) }, 'ignored ERROR packet sent to the listening port');
      return;
    }
    if (op === OP.WRQ) {
      log.warn({ peer: peer(rinfo), name: requestedName(msg)?.slice(0, 128) }, 'refused write request');
      sendQuietly(socket, errorPacket(TFTP_ERROR.accessViolation, 'Access violation'), rinfo);
      return;
    }
    if (op === OP.RRQ) {
      const name = requestedName(msg);
      const check = name === undefined ? undefined : checkRequestName(name);
      if (check && !check.ok) {
        log.warn({ peer: peer(rinfo), name: name!.slice(0, 128), reason: check.reason }, 'refused request outside the sandbox');
        sendQuietly(socket, errorPacket(TFTP_ERROR.accessViolation, 'Access violation'), rinfo);
        return;
      }
    } else {
      log.debug({ peer: peer(rinfo), op, length: msg.length }, 'not a TFTP request');
      sendQuietly(socket, errorPacket(TFTP_ERROR.illegalOperation, 'Illegal TFTP operation'), rinfo);
      return;
    }
    const run = () => {
      for (const l of inner) {
        try {
          l.call(socket, msg, rinfo);
        } catch (e) {
          log.warn({ peer: peer(rinfo), op, length: msg.length, err: (e as Error)?.message }, 'tftp library failed on a request');
        }
      }
    };
    admission.admit(rinfo, run, (code, message) => sendQuietly(socket, errorPacket(code, message), rinfo));
  });
}

/**
 * Puts the transfer guard in front of one transfer's socket. Call it from the
 * library's request event (the library emits it before the socket can deliver
 * any datagram). `onFault` ends the transfer when the library throws.
 * Returns false when the library's internals are not where expected.
 */
export function guardTransfer(res: TftpResponse, log: Logger, onFault: (e: unknown) => void): boolean {
  const t = transferOf(res);
  if (!t) return false;
  const inner = takeListeners(t.socket);
  t.socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (rinfo.address !== t.address || rinfo.port !== t.port) {
      log.debug({ peer: peer(rinfo), client: `${t.address}:${t.port}` }, 'datagram from a foreign transfer ID');
      sendQuietly(t.socket, errorPacket(TFTP_ERROR.unknownTid, 'Unknown transfer ID'), rinfo);
      return;
    }
    if (msg.length < 4) {
      log.debug({ peer: peer(rinfo), length: msg.length }, 'dropped runt datagram');
      return;
    }
    for (const l of inner) {
      try {
        l.call(t.socket, msg, rinfo);
      } catch (e) {
        log.warn({ peer: peer(rinfo), length: msg.length, err: (e as Error)?.message }, 'tftp library failed on a transfer packet');
        onFault(e);
        return;
      }
    }
  });
  return true;
}
