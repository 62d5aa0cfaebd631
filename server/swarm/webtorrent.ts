/** The frontend's webtorrent client: the shared peer settings plus the seeder's options. */
import { TCP_ONLY, WebTorrent, type WebTorrentClient, type WebTorrentOptions, whenListening } from '../../protocol/webtorrent.js';

export type { ChunkStore, ChunkStoreFactory, Torrent, TorrentOptions, WebTorrentClient, Wire } from '../../protocol/webtorrent.js';
export type { BitField } from '../../protocol/webtorrent.js';
export { TCP_ONLY, destroyClient, failedPiece as isPieceFailure, frontendPeerId } from '../../protocol/webtorrent.js';

/** A webtorrent client that is listening (its TCP port is known) when the promise resolves. */
export async function createClient(opts: Omit<WebTorrentOptions, keyof typeof TCP_ONLY>): Promise<WebTorrentClient> {
  return whenListening(new WebTorrent({ ...TCP_ONLY, ...opts }));
}
