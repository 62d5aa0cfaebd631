/**
 * Misbehaving peers built from a stock webtorrent client that claims every
 * piece: `corrupt` seeds from a store that inverts every byte it reads, so each
 * block it really uploads fails the piece hash at the receiver; `silent` seeds
 * from a store that never answers, so requests to it are never served.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createClient } from '../../protocol/webtorrent-private.js';
import { destroyClient, type ChunkStore, type WebTorrentClient } from '../../protocol/webtorrent.js';

export type BadPeerMode = 'corrupt' | 'silent';

function badStore(file: string, mode: BadPeerMode) {
  return class implements ChunkStore {
    private fh: Promise<FileHandle> | undefined;
    constructor(
      readonly chunkLength: number,
      private readonly opts: { length: number },
    ) {}
    get(index: number, o: { offset?: number; length?: number } | null, cb: (err: Error | null, buf?: Uint8Array) => void): void {
      if (typeof o === 'function') [o, cb] = [null, o];
      if (mode === 'silent') return;
      const start = index * this.chunkLength + (o?.offset ?? 0);
      const len = o?.length ?? Math.min(this.chunkLength, this.opts.length - index * this.chunkLength) - (o?.offset ?? 0);
      this.fh ??= open(file, 'r');
      this.fh
        .then(async (fh) => {
          const buf = Buffer.alloc(len);
          await fh.read(buf, 0, len, start);
          for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ 0xff;
          cb(null, buf);
        })
        .catch((err: Error) => cb(err));
    }
    put(_i: number, _b: Uint8Array, cb?: (err: Error | null) => void): void {
      cb?.(new Error('read-only'));
    }
    close(cb?: () => void): void {
      void this.fh?.then((fh) => fh.close()).catch(() => undefined);
      cb?.();
    }
    destroy(cb?: () => void): void {
      this.close(cb);
    }
  };
}

export class BadPeer {
  private constructor(readonly client: WebTorrentClient) {}

  /** Joins the torrent's swarm (its tracker must allow the info-hash) claiming every piece. */
  static async start(path: string, torrent: Buffer, mode: BadPeerMode = 'corrupt'): Promise<BadPeer> {
    const client = await createClient({ webSeeds: false });
    const t = client.add(torrent, { store: badStore(path, mode), skipVerify: true });
    await new Promise<void>((resolve) => (t.ready ? resolve() : t.once('ready', () => resolve())));
    return new BadPeer(client);
  }

  get peerId(): string {
    return this.client.peerId;
  }

  /** Piece payload bytes it sent. */
  get uploaded(): number {
    return this.client.torrents.reduce((n, t) => n + t.uploaded, 0);
  }

  close(): Promise<void> {
    return destroyClient(this.client);
  }
}
