/**
 * Torrents for stored images. Each is private, single-file (`<name>.ksimg`),
 * announces only to the frontend's tracker and names the frontend's image
 * route as its BEP 19 web seed. Announce and url-list sit outside the info
 * dictionary, so the info-hash depends only on the image bytes, name and piece
 * length: a torrent made once can be re-addressed to any frontend URL without
 * hashing the image again (retargetTorrent).
 */
import fs from 'node:fs';
import { imagePath } from '../../protocol/api.js';

/** The torrent-facing URLs of one image on one frontend. */
export interface TorrentUrls {
  /** Tracker announce URL, e.g. `http://10.1.1.1:8080/announce`. */
  announce: string;
  /** Web seed URL, e.g. `http://10.1.1.1:8080/install/images/centos7`. */
  webSeed: string;
}

export interface MadeTorrent {
  torrent: Buffer;
  /** Hex SHA-1 of the bencoded info dictionary. */
  infoHash: string;
}

export const MIN_PIECE_LENGTH = 256 * 1024;
export const MAX_PIECE_LENGTH = 16 * 1024 * 1024;
export const TARGET_MAX_PIECES = 2000;

/**
 * Piece length for a file of `size` bytes: the smallest power of two from
 * 256 KiB such that the torrent has at most 2000 pieces, capped at 16 MiB
 * (files above about 31 GiB then have more than 2000 pieces).
 */
export function pieceLengthFor(size: number): number {
  let p = MIN_PIECE_LENGTH;
  while (p < MAX_PIECE_LENGTH && Math.ceil(size / p) > TARGET_MAX_PIECES) p *= 2;
  return p;
}

/** `<frontendUrl>/announce` and `<frontendUrl>/install/images/<name>` (`name` may be `NAME@N`). */
export function torrentUrls(frontendUrl: string, name: string): TorrentUrls {
  const base = frontendUrl.replace(/\/+$/, '');
  return { announce: `${base}/announce`, webSeed: `${base}${imagePath(name)}` };
}

type CreateTorrent = (input: string, opts: Record<string, unknown>, cb: (err: Error | null, torrent: Buffer) => void) => void;
interface ParsedTorrent {
  infoHash: string;
  infoBuffer: Uint8Array;
  announce: string[];
  urlList: string[];
  private?: boolean;
  pieceLength: number;
  length: number;
  name: string;
}
type ParseTorrent = (t: Uint8Array) => Promise<ParsedTorrent>;

// These packages ship no type declarations; their shapes are stated above.
const loadCreateTorrent = async (): Promise<CreateTorrent> => (await import('create-torrent' as string)).default as CreateTorrent;
/** parse-torrent's default export (v11: async). */
export const loadParseTorrent = async (): Promise<ParseTorrent> => (await import('parse-torrent' as string)).default as ParseTorrent;

const made = new Map<string, Promise<MadeTorrent>>();
const CACHE_MAX = 256;

function remember(key: string, make: () => Promise<MadeTorrent>): Promise<MadeTorrent> {
  let p = made.get(key);
  if (!p) {
    if (made.size >= CACHE_MAX) made.delete(made.keys().next().value!);
    p = make();
    p.catch(() => made.delete(key));
    made.set(key, p);
  }
  return p;
}

/**
 * Hashes the image file into a torrent for `urls`. Results are cached by
 * (name, announce, webSeed) and the file's identity (inode, size, mtime), so a
 * replaced image is hashed again. `onProgress` reports hashing (first call only).
 */
export async function makeTorrent(imagePath: string, name: string, urls: TorrentUrls, opts: { onProgress?: (hashed: number, total: number) => void } = {}): Promise<MadeTorrent> {
  const st = await fs.promises.stat(imagePath);
  const key = JSON.stringify([name, urls.announce, urls.webSeed, st.ino, st.size, st.mtimeMs]);
  return remember(key, async () => {
    const createTorrent = await loadCreateTorrent();
    const torrent = await new Promise<Buffer>((resolve, reject) =>
      createTorrent(
        imagePath,
        {
          name: `${name}.ksimg`,
          private: true,
          announceList: [[urls.announce]],
          urlList: [urls.webSeed],
          pieceLength: pieceLengthFor(st.size),
          createdBy: 'kickswarm',
          creationDate: new Date(Math.floor(st.mtimeMs)),
          onProgress: opts.onProgress,
        },
        (err, buf) => (err ? reject(err) : resolve(Buffer.from(buf))),
      ),
    );
    const parsed = await (await loadParseTorrent())(torrent);
    return { torrent, infoHash: parsed.infoHash };
  });
}

function bstr(s: string | Buffer): Buffer[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return [Buffer.from(`${b.length}:`), b];
}

/**
 * The same torrent (same info dictionary, so the same info-hash) announcing to
 * `urls.announce` with `urls.webSeed` as its only web seed. No hashing of the
 * image; cached by (info-hash, announce, webSeed).
 */
export async function retargetTorrent(torrent: Buffer, urls: TorrentUrls): Promise<MadeTorrent> {
  const parsed = await (await loadParseTorrent())(torrent);
  const key = JSON.stringify(['retarget', parsed.infoHash, urls.announce, urls.webSeed]);
  return remember(key, async () => {
    // Keys in bencode's required sorted order.
    const parts: Buffer[] = [Buffer.from('d')];
    parts.push(...bstr('announce'), ...bstr(urls.announce));
    parts.push(...bstr('announce-list'), Buffer.from('ll'), ...bstr(urls.announce), Buffer.from('ee'));
    parts.push(...bstr('created by'), ...bstr('kickswarm'));
    parts.push(...bstr('info'), Buffer.from(parsed.infoBuffer));
    parts.push(...bstr('url-list'), Buffer.from('l'), ...bstr(urls.webSeed), Buffer.from('e'));
    parts.push(Buffer.from('e'));
    return { torrent: Buffer.concat(parts), infoHash: parsed.infoHash };
  });
}

/** Forgets every cached torrent (tests, or after images change wholesale). */
export function clearTorrentCache(): void {
  made.clear();
}
