/**
 * The node proxy's webtorrent client: the shared peer settings plus one
 * source address. A client made with `localAddress`:
 * - listens for peers on that address only;
 * - announces from it (bittorrent-tracker's `proxyOpts.httpAgent`, an undici
 *   Agent with `localAddress`, reaches its fetch as `dispatcher`);
 * - connects out to peers from it (bindOutgoing, per torrent).
 */
import { Agent } from 'undici';
import { createClient } from '../../protocol/webtorrent-private.js';
import type { WebTorrentClient } from '../../protocol/webtorrent.js';

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
  const client = await createClient({ unthrottled: true, webSeeds: false, torrentPort: opts.peerPort, host, tracker: agent ? { proxyOpts: { httpAgent: agent } } : {} });
  return { client, agent };
}
