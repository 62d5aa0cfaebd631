/**
 * Turns a failed bind of a listening socket into one clear UnavailableError:
 * what could not listen, where, why, and what to do about it.
 */
import dgram from 'node:dgram';
import { UnavailableError } from '../protocol/errors.js';

const WHY: Record<string, string> = {
  EADDRINUSE: 'the port is in use by another program',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE (see `kickswarm systemd-unit`)',
  EADDRNOTAVAIL: 'the address is not one of this machine',
  EINVAL: 'the address is not valid here',
};

/**
 * `what` names the socket (e.g. `HTTP`), `flag` the option that moves it.
 * The errno code (from the error or its message) is kept in the detail.
 */
export function bindFailure(what: string, where: string, flag: string, err: unknown): UnavailableError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) ? e.code : /\b(E[A-Z]{3,})\b/.exec(String(e?.message))?.[1];
  const why = (code && WHY[code]) ?? String(e?.message ?? err).replace(/^cannot listen for [^:]*: /, '');
  const hint = code === 'EADDRINUSE' ? `; choose another with ${flag}` : '';
  return new UnavailableError(`cannot listen for ${what} on ${where}: ${why}${code ? ` (${code})` : ''}${hint}`, { code, where });
}

/** Binds and closes a UDP socket on `address` port 0: rejects with the bind error when the address cannot send from here. */
export function probeUdpAddress(address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', (e) => {
      s.close();
      reject(e);
    });
    s.bind(0, address, () => s.close(() => resolve()));
  });
}
