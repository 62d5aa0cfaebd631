/**
 * Fetches and checks an image's .torrent from the frontend. The answer is either
 * a usable single-file torrent or the reason there is none (the proxy then moves
 * the image over plain HTTP); only an unreachable frontend is an error.
 */
import { request, type Dispatcher } from 'undici';
import parseTorrentModule from 'parse-torrent';
import { UnavailableError } from '../../protocol/errors.js';
import type { TorrentMeta } from './session.js';
import { describe } from './webseed.js';

interface ParsedTorrent {
  infoHash: string;
  length: number;
  pieceLength: number;
  lastPieceLength: number;
  pieces: string[];
  files: { length: number }[];
}

const parseTorrent = parseTorrentModule as unknown as (buf: Uint8Array) => Promise<ParsedTorrent>;

const MAX_TORRENT_BYTES = 32 << 20;

export type MetaResult = { kind: 'torrent'; meta: TorrentMeta } | { kind: 'none'; reason: string };

export async function fetchTorrentMeta(url: string, name: string, dispatcher?: Dispatcher): Promise<MetaResult> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { method: 'GET', dispatcher, headersTimeout: 15_000, bodyTimeout: 15_000 });
  } catch (err) {
    throw new UnavailableError(`frontend unreachable for ${name}.torrent: ${describe(err)}`);
  }
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => undefined);
    return { kind: 'none', reason: `no torrent for ${name} (HTTP ${res.statusCode})` };
  }
  const declared = Number(res.headers['content-length'] ?? 0);
  if (declared > MAX_TORRENT_BYTES) {
    await res.body.dump().catch(() => undefined);
    return { kind: 'none', reason: `torrent for ${name} is too large (${declared} bytes)` };
  }
  const torrent = Buffer.from(await res.body.arrayBuffer());
  return checkTorrent(torrent, name);
}

/** A usable single-file torrent for image `name`, or why `torrent` is not one. */
export async function checkTorrent(torrent: Buffer, name: string): Promise<MetaResult> {
  let parsed: ParsedTorrent;
  try {
    parsed = await parseTorrent(torrent);
  } catch (err) {
    return { kind: 'none', reason: `torrent for ${name} does not parse (${(err as Error).message})` };
  }
  if (!parsed?.infoHash || !Array.isArray(parsed.pieces) || !parsed.pieceLength) {
    return { kind: 'none', reason: `torrent for ${name} has no info dictionary` };
  }
  if (parsed.files.length !== 1 || !(parsed.length > 0)) {
    return { kind: 'none', reason: `torrent for ${name} must describe one non-empty file` };
  }
  if (parsed.pieces.length !== Math.ceil(parsed.length / parsed.pieceLength)) {
    return { kind: 'none', reason: `torrent for ${name} has ${parsed.pieces.length} piece hashes for ${parsed.length} bytes` };
  }
  return {
    kind: 'torrent',
    meta: {
      name,
      infoHash: parsed.infoHash,
      length: parsed.length,
      pieceLength: parsed.pieceLength,
      hashes: parsed.pieces,
      torrent,
    },
  };
}
