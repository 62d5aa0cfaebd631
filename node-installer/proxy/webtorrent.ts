/**
 * The node proxy's webtorrent client: the shared peer settings plus source-address
 * binding. webtorrent has no option for the addresses it uses, so a client made
 * with `localAddress`:
 * - listens for peers on that address only (the listen call made while the
 *   client is constructed gets the host added);
 * - announces from it (bittorrent-tracker's `proxyOpts.httpAgent`, an undici
 *   Agent with `localAddress`, reaches its fetch as `dispatcher`);
 * - connects out to peers from it (each torrent's `_drain`, the only place that
 *   opens peer connections, sees a `net.connect` that adds `localAddress`).
 * Each patch is applied synchronously around one call and undone at once.
 */
import net from 'node:net';
import { Agent } from 'undici';
import { TCP_ONLY, type Torrent, WebTorrent, type WebTorrentClient, type WebTorrentOptions, whenListening } from '../../protocol/webtorrent.js';

export type { BitField, ChunkStore, Torrent, TorrentOptions, WebTorrentClient, Wire } from '../../protocol/webtorrent.js';
export { destroyClient, failedPiece, isFrontendPeer } from '../../protocol/webtorrent.js';

export interface SwarmClientOptions {
  /** TCP port for incoming peers (0 = any). */
  peerPort: number;
  /** Source and listen address; undefined = the system's choice, all interfaces. */
  localAddress?: string;
}

/** A listening, TCP-only webtorrent client that ignores url-lists (the proxy runs its own verified web seed fallback). */
export async function createSwarmClient(opts: SwarmClientOptions): Promise<{ client: WebTorrentClient; agent?: Agent }> {
  const host = opts.localAddress;
  const agent = host ? new Agent({ localAddress: host }) : undefined;
  const options: WebTorrentOptions = {
    ...TCP_ONLY,
    webSeeds: false,
    torrentPort: opts.peerPort,
    tracker: agent ? { proxyOpts: { httpAgent: agent } } : {},
  };
  let client: WebTorrentClient;
  if (host) {
    const createServer = net.createServer;
    net.createServer = ((...args: Parameters<typeof net.createServer>) => {
      const server = createServer(...args);
      const listen = server.listen;
      server.listen = ((port: number, cb?: () => void) => listen.call(server, { port, host }, cb)) as typeof server.listen;
      return server;
    }) as typeof net.createServer;
    try {
      client = new WebTorrent(options);
    } finally {
      net.createServer = createServer;
    }
  } else {
    client = new WebTorrent(options);
  }
  await whenListening(client);
  return { client, agent };
}

/** Makes every outgoing peer connection of `torrent` leave from `localAddress`. */
export function bindOutgoing(torrent: Torrent, localAddress: string | undefined): void {
  if (!localAddress) return;
  const drain = torrent._drain;
  torrent._drain = function boundDrain(this: Torrent) {
    const connect = net.connect;
    net.connect = ((opts: net.NetConnectOpts, ...rest: unknown[]) => (connect as (...a: unknown[]) => net.Socket)({ ...opts, localAddress }, ...rest)) as typeof net.connect;
    try {
      return drain.call(this);
    } finally {
      net.connect = connect;
    }
  };
}
