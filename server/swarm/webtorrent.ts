/** The frontend's webtorrent client: the shared peer settings plus the seeder's options. */
import net from 'node:net';
import { TCP_ONLY, WebTorrent, type WebTorrentClient, type WebTorrentOptions, whenListening } from '../../protocol/webtorrent.js';

export type { ChunkStore, ChunkStoreFactory, Torrent, TorrentOptions, WebTorrentClient, Wire } from '../../protocol/webtorrent.js';
export type { BitField } from '../../protocol/webtorrent.js';
export { TCP_ONLY, destroyClient, dropPeersWithBadHaves, failedPiece as isPieceFailure, frontendPeerId } from '../../protocol/webtorrent.js';

/**
 * A webtorrent client that is listening (its TCP port is known) when the
 * promise resolves; its peer port binds `host` when given (webtorrent 2.8.5
 * has no option for it: its connection pool calls `net.createServer()` and
 * `listen(port, cb)` while the client is constructed, and that one server's
 * listen is given the host here).
 */
export async function createClient(opts: Omit<WebTorrentOptions, keyof typeof TCP_ONLY> & { host?: string }): Promise<WebTorrentClient> {
  const { host, ...rest } = opts;
  const make = () => new WebTorrent({ ...TCP_ONLY, ...rest });
  return whenListening(host && host !== '0.0.0.0' && host !== '::' ? withListenHost(host, make) : make());
}

function withListenHost<T>(host: string, make: () => T): T {
  const mod = net as unknown as { createServer: typeof net.createServer };
  const original = mod.createServer;
  mod.createServer = ((...args: Parameters<typeof net.createServer>) => {
    const server = original(...args);
    const listen = server.listen.bind(server) as (...a: unknown[]) => net.Server;
    (server as unknown as { listen: (...a: unknown[]) => net.Server }).listen = (port: unknown, ...more: unknown[]) => {
      const cb = more.find((a) => typeof a === 'function');
      return typeof port === 'number' ? listen({ port, host }, cb) : listen(port, ...more);
    };
    return server;
  }) as typeof net.createServer;
  try {
    return make();
  } finally {
    mod.createServer = original;
  }
}
