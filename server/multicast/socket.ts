/** UDP socket plumbing for the multicast sender. */
import dgram from 'node:dgram';
import type { Logger } from '../log.js';

/** Binds a new UDP socket (reuseAddr when asked); rejects with the bind error. */
export async function bindSocket(port: number, address: string | undefined, reuseAddr: boolean, log: Logger): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, address, () => {
      s.off('error', reject);
      resolve();
    });
  });
  s.on('error', (err) => log.warn({ err: err.message }, 'multicast socket error'));
  return s;
}

/** Asks the kernel for bigger buffers; it caps them silently (net.core.rmem_max / wmem_max). */
export function tryBuffers(s: dgram.Socket, recv?: number, send?: number): void {
  try {
    if (recv) s.setRecvBufferSize(recv);
    if (send) s.setSendBufferSize(send);
  } catch {
    // defaults still work
  }
}

/** Closes a socket; never throws, resolves once closed. */
export function closeSocket(s: dgram.Socket | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!s) return resolve();
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
