/**
 * Typed access to the npm `tftp` 0.1.2 package (CommonJS, no type
 * definitions): the subset kickswarm uses, plus the three internals it must
 * reach, named here and nowhere else:
 * - `Server#_socket`: the listening dgram socket (bound port, request gate);
 * - `Server#port`: read by `listen()`; the constructor turns 0 into 69;
 * - `PutStream#_writer` (`_socket`, `_address`, `_port`): one transfer's socket
 *   and the client's transfer ID (transfer guard);
 * - the library's listener makes each transfer's socket with
 *   `dgram.createSocket()` and binds it with `bind(0, null, cb)`, both inside
 *   the listener call (./admission.ts hands it a socket bound beforehand);
 * - `PutStream#_writer._window`: the sending window, replaced by ./window.ts
 *   (`feed`, `resume`, `isEOF`, `_writerTimer` are what the writer calls), and
 *   the writer's `_sendBlock` and `_createRetransmitter` it uses.
 */
import dgram from 'node:dgram';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { SendWindow, type WindowHost } from './window.js';
import type { Readable, Writable } from 'node:stream';

export interface TftpStats {
  blockSize: number;
  windowSize: number;
  size: number | null;
  userExtensions: Record<string, string>;
  retries: number;
  timeout: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** The request side of one transfer (library GetStream). */
export interface TftpRequest extends Readable {
  method: 'GET' | 'PUT';
  /** The name as the client sent it after the library's path.normalize(). */
  file: string;
  stats: TftpStats;
  /** Ends the transfer with an ERROR packet; a known message (e.g. `ENOENT`) gets its RFC code. */
  abort(message?: string): void;
}

/** The response side of one transfer (library PutStream). */
export interface TftpResponse extends Writable {
  /** Must be called exactly once before writing; resumes the transfer (sends OACK with tsize). */
  setSize(size: number): void;
}

export interface TftpLibServer extends EventEmitter {
  host: string;
  port: number;
  listen(): void;
  close(): void;
}

export interface TftpServerOptionsLib {
  host: string;
  port: number;
  root: string;
  denyPUT?: boolean;
  denyGET?: boolean;
}

export interface TftpClientOptions {
  host: string;
  port: number;
  blockSize?: number;
  windowSize?: number;
  retries?: number;
  timeout?: number;
}

export interface TftpClient {
  createGetStream(remote: string, options?: Record<string, unknown>): Readable & { abort(message?: string): void };
}

interface TftpModule {
  createServer(options: TftpServerOptionsLib, listener: (req: TftpRequest, res: TftpResponse) => void): TftpLibServer;
  createClient(options: TftpClientOptions): TftpClient;
  ENOENT: string;
  EACCESS: string;
  EBADOP: string;
  EIO: string;
  EABORT: string;
}

const tftp = createRequire(import.meta.url)('tftp') as TftpModule;

/** RFC 1350 error messages; the library derives the error code from them. */
export const TFTP_MESSAGES = {
  notFound: tftp.ENOENT,
  accessViolation: tftp.EACCESS,
  illegalOperation: tftp.EBADOP,
  io: tftp.EIO,
  aborted: tftp.EABORT,
} as const;

/** Creates a library server that binds `options.port` as given (0 = any free port). */
export function createLibServer(options: TftpServerOptionsLib, listener: (req: TftpRequest, res: TftpResponse) => void): TftpLibServer {
  const server = tftp.createServer(options, listener);
  server.port = options.port;
  return server;
}

export function createLibClient(options: TftpClientOptions): TftpClient {
  return tftp.createClient(options);
}

/** The library server's listening socket. */
export function listeningSocket(server: TftpLibServer): dgram.Socket {
  return (server as unknown as { _socket: dgram.Socket })._socket;
}

/** One transfer's own socket and the client's address and port (its transfer ID). */
export function transferOf(res: TftpResponse): { socket: dgram.Socket; address: string; port: number } | undefined {
  const w = (res as unknown as { _writer?: { _socket?: dgram.Socket; _address?: string; _port?: number } })._writer;
  if (!w?._socket || typeof w._address !== 'string' || typeof w._port !== 'number') return undefined;
  return { socket: w._socket, address: w._address, port: w._port };
}

/**
 * Puts kickswarm's sending window (./window.ts) in place of the library's on a
 * read transfer. Call it from the request event, before the size is set (no
 * block has been fed yet). Returns false when the internals are not found.
 */
export function useSendWindow(res: TftpResponse, stats: Pick<TftpStats, 'blockSize' | 'windowSize'>): boolean {
  const w = (res as unknown as { _writer?: WindowHost & { _window?: unknown } })._writer;
  if (!w || typeof w._sendBlock !== 'function' || typeof w._createRetransmitter !== 'function' || !w._window) return false;
  if (!(stats.blockSize > 0) || !(stats.windowSize > 0)) return false;
  w._window = new SendWindow(w, stats.blockSize, stats.windowSize);
  return true;
}

type CreateSocket = typeof dgram.createSocket;

/**
 * Runs `run` (a call into the library's request listener) so that the one
 * socket the library makes during it is `socket`, already bound: the library's
 * own `bind()` on it calls back on the next tick instead. Returns whether the
 * library took the socket. Any further socket it makes during the call is
 * refused with an exception (the listener is then contained by the caller).
 */
export function withTransferSocket(socket: dgram.Socket, run: () => void): boolean {
  const mod = dgram as unknown as { createSocket: CreateSocket };
  const original = mod.createSocket;
  let taken = false;
  mod.createSocket = (() => {
    if (taken) throw new Error('tftp library made a second socket for one request');
    taken = true;
    (socket as unknown as { bind: (...args: unknown[]) => dgram.Socket }).bind = (...args: unknown[]) => {
      const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
      if (cb) process.nextTick(cb);
      return socket;
    };
    return socket;
  }) as CreateSocket;
  try {
    run();
  } finally {
    mod.createSocket = original;
  }
  return taken;
}
