/**
 * The checks `kickswarm serve` runs before it loads the frontend's modules (the
 * swarm, the HTTP app, the dashboard: most of its start-up time), so that a
 * server that cannot run says why at once: the data dir is made (or found
 * unwritable), its serve lock taken (or found held by another server), the
 * config read, and every socket the frontend will listen on with a fixed port
 * bound once and released (HTTP, TFTP, BitTorrent peers) as well as the
 * configured multicast interface. Each failure is the same one-line
 * KickswarmError the frontend would give for it.
 *
 * A port that passes here can still be taken in the moment before the
 * frontend binds it; the frontend's own bind then fails the same way, only
 * later. The lock is handed over to the frontend (FrontendOptions.heldLock),
 * never released and retaken.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { bindFailure, probeUdpAddress } from './bind-error.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { ensureDataDir } from './datadir.js';
import { DataDirLock } from './lock.js';

/** A serve lock taken by the preflight, with the PID of a dead holder it took over (if any). */
export interface HeldLock {
  lock: DataDirLock;
  staleFrom?: number;
}

export interface Preflight {
  config: Config;
  heldLock: HeldLock;
}

/**
 * Runs the checks; resolves with the config and the held lock, or rejects with
 * the first failure (the lock released again).
 */
export async function preflightServe(opts: { dataDir: string; configFile?: string; overrides?: Record<string, unknown> }): Promise<Preflight> {
  const dirs = ensureDataDir(opts.dataDir);
  const lock = new DataDirLock(dirs.root);
  const { staleFrom } = lock.acquire();
  try {
    const config = loadConfig({ dataDir: dirs.root, configFile: opts.configFile, overrides: opts.overrides });
    await probeTcp(config.listen, config.httpPort).catch((e: unknown) => {
      throw bindFailure('HTTP', `tcp ${config.listen}:${config.httpPort}`, '--http-port', e);
    });
    await probeUdp(config.listen, config.tftpPort).catch((e: unknown) => {
      throw bindFailure('TFTP', `udp ${config.listen}:${config.tftpPort}`, '--tftp-port', e);
    });
    if (config.swarm.peerPort !== 0) {
      await probeTcp(config.listen, config.swarm.peerPort).catch((e: unknown) => {
        throw bindFailure('BitTorrent peers', `tcp port ${config.swarm.peerPort}`, 'swarm.peerPort in kickswarm.yaml', e);
      });
    }
    const mcast = config.multicast.interface;
    if (mcast) {
      await probeUdpAddress(mcast).catch((e: unknown) => {
        throw bindFailure('multicast', `interface ${mcast}`, 'multicast.interface in kickswarm.yaml', e);
      });
    }
    return { config, heldLock: { lock, staleFrom } };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Listens on host:port (0: any free port, which still checks the address) and closes again. */
function probeTcp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}

/** Binds a UDP socket of the address's family on host:port and closes it again. */
function probeUdp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    s.once('error', (e) => {
      s.close();
      reject(e);
    });
    s.bind(port, host, () => s.close(() => resolve()));
  });
}
