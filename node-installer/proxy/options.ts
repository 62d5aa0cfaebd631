/** The proxy's options and their checks (bad values are InvalidInputError, named by option). */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { InvalidInputError } from '../../protocol/errors.js';

export interface SwarmProxyOptions {
  /** Frontend base URL, e.g. `http://10.1.1.1:8080`. */
  frontend: string;
  /** Loopback address the HTTP side listens on (default 127.0.0.1; non-loopback is refused). */
  host?: string;
  /** HTTP port (default 0 = any free port). */
  port?: number;
  /** Seconds an image keeps seeding after its last local request ended (default 30). */
  linger?: number;
  /** Seconds without a verified piece before the web seed takes over (default 20). */
  stallTimeout?: number;
  /** The node's own address: source of every connection, and the peer listen address. */
  localAddress?: string;
  /** TCP port other peers connect to (default 0 = any free port). */
  peerPort?: number;
  /** Where downloaded images are kept (default: a fresh directory under the OS temp dir, removed on close). */
  cacheDir?: string;
  /** The install session token, sent with every request to the frontend (torrents, web seed, forwarded routes). */
  session?: string;
  log: Logger;
}

type Checked = Required<Omit<SwarmProxyOptions, 'localAddress' | 'cacheDir' | 'session'>> & Pick<SwarmProxyOptions, 'localAddress' | 'cacheDir' | 'session'>;

export function checkProxyOptions(o: SwarmProxyOptions): Checked {
  let frontend: URL;
  try {
    frontend = new URL(o.frontend);
  } catch {
    throw new InvalidInputError(`--frontend ${JSON.stringify(String(o.frontend).slice(0, 80))} is not a URL`);
  }
  if (frontend.protocol !== 'http:' && frontend.protocol !== 'https:') {
    throw new InvalidInputError(`--frontend must be an http:// or https:// URL, got ${frontend.protocol}`);
  }
  if (frontend.search || frontend.hash) throw new InvalidInputError('--frontend must not have a query or fragment');
  const host = o.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new InvalidInputError(`the proxy listens on loopback only, not ${host}`);
  if (o.localAddress !== undefined && isIP(o.localAddress) === 0) {
    throw new InvalidInputError(`--local-address ${JSON.stringify(o.localAddress)} is not an IP address`);
  }
  return {
    frontend: frontend.href,
    host,
    port: port(o.port ?? 0, '--port'),
    peerPort: port(o.peerPort ?? 0, '--peer-port'),
    linger: seconds(o.linger ?? 30, '--linger', true),
    stallTimeout: seconds(o.stallTimeout ?? 20, '--stall-timeout', false),
    localAddress: o.localAddress,
    cacheDir: o.cacheDir,
    session: o.session,
    log: o.log,
  };
}

function isLoopback(host: string): boolean {
  return host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function port(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidInputError(`${what} must be a port number 0-65535, got ${n}`);
  return n;
}

function seconds(n: number, what: string, zeroOk: boolean): number {
  if (!Number.isFinite(n) || n < 0 || (!zeroOk && n === 0) || n > 86400) {
    throw new InvalidInputError(`${what} must be a number of seconds${zeroOk ? '' : ' above 0'} up to 86400, got ${n}`);
  }
  return n;
}
