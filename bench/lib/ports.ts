/**
 * A TCP port a process started later can listen on. Port 0 cannot be used
 * when the port must be written into a config or a command line before the
 * process starts; a port the kernel picked for a moment would be in its
 * ephemeral range, where any outgoing connection on a busy machine can take
 * it before the process binds. So the port is chosen at random below that
 * range (read from /proc where it exists) and checked bindable on every
 * address.
 */
import fs from 'node:fs';
import net from 'node:net';

/** The first port of the kernel's ephemeral range (32768 when unknown). */
function ephemeralStart(): number {
  try {
    const first = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 2048 ? first : 32768;
  } catch {
    return 32768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

/** A port in [10000, ephemeral start) that nothing listens on now; throws after 200 tries. */
export async function freePort(): Promise<number> {
  const low = 10_000;
  const high = Math.max(low + 1000, ephemeralStart());
  for (let i = 0; i < 200; i++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free TCP port found in ${low}-${high - 1}`);
}
