/**
 * Writes one image version into the store folder: converts a raw disk image
 * (or verifies and copies/moves a file already in the chunked format), makes
 * its torrent and metadata, all under temporary names, fsynced, then renamed
 * with the `.json` last. A failure or abort removes every temporary file. The
 * caller holds the image's lock.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { verifyImage, writeImage } from '../../protocol/image-format.js';
import type { SimpleName } from '../../protocol/node.js';
import type { ImageMeta } from '../../protocol/api.js';
import { fsyncFile, moveFile, startsWithMagic, versionKey, writeSynced } from './store-fs.js';
import { makeTorrent, torrentUrls } from './torrent.js';

export interface AddProgress {
  phase: 'convert' | 'verify' | 'torrent';
  done: number;
  total?: number;
}

export interface AddOptions {
  onProgress?: (p: AddProgress) => void;
  signal?: AbortSignal;
  /** Chunk size for conversion (default 1 MiB). */
  chunkSize?: number;
  /**
   * The file is the caller's to give away (an upload's temporary file): when it
   * is already in the image format it is renamed into the store instead of
   * copied (copied when it is on another file system), so adding it needs no
   * second copy's worth of disk. It is gone afterwards, also when the add fails.
   */
  move?: boolean;
  /** ConflictError when the name exists (instead of adding a version). */
  newOnly?: boolean;
}

export async function writeVersion(w: { dir: string; file: string; name: SimpleName; version: number; frontendUrl: string; createdAt: Date; opts: AddOptions }): Promise<ImageMeta> {
  const { file, name: n, version, opts } = w;
  const at = (key: string, ext: string) => path.join(w.dir, `${key}${ext}`);
  const st = await fs.promises.stat(file).catch(() => {
    throw new NotFoundError(`no such file: ${file}`);
  });
  if (st.isDirectory()) throw new InvalidInputError(`${file} is a directory, not a disk image`);
  const key = versionKey(n, version);
  const tag = `.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const tmp = { img: at(key, `.ksimg${tag}`), tor: at(key, `.torrent${tag}`), json: at(key, `.json${tag}`) };
  const report = opts.onProgress ?? (() => {});
  try {
    let summary: Omit<ImageMeta, 'name' | 'version' | 'ref' | 'createdAt' | 'infoHash'>;
    if (await startsWithMagic(file)) {
      await (opts.move ? moveFile(file, tmp.img) : fs.promises.copyFile(file, tmp.img));
      const h = await verifyImage(tmp.img, { signal: opts.signal, onProgress: (done, total) => report({ phase: 'verify', done, total }) });
      summary = { ...pick(h), storedSize: (await fs.promises.stat(tmp.img)).size };
    } else {
      const s = await writeImage(file, tmp.img, { signal: opts.signal, chunkSize: opts.chunkSize }, (p) => report({ phase: 'convert', done: p.rawDone, total: p.rawSize }));
      summary = s;
    }
    opts.signal?.throwIfAborted();
    report({ phase: 'torrent', done: 0, total: summary.storedSize });
    const t = await makeTorrent(tmp.img, key, torrentUrls(w.frontendUrl, key), {
      onProgress: (hashed) => report({ phase: 'torrent', done: Math.min(hashed, summary.storedSize), total: summary.storedSize }),
    });
    report({ phase: 'torrent', done: summary.storedSize, total: summary.storedSize });
    opts.signal?.throwIfAborted();
    const meta: ImageMeta = {
      name: n,
      version,
      ref: `${n}@${version}`,
      rawSize: summary.rawSize,
      storedSize: summary.storedSize,
      chunkSize: summary.chunkSize,
      chunkCount: summary.chunkCount,
      storedChunks: summary.storedChunks,
      sha256: summary.sha256,
      createdAt: w.createdAt.toISOString(),
      infoHash: t.infoHash,
    };
    await writeSynced(tmp.tor, t.torrent);
    await writeSynced(tmp.json, Buffer.from(JSON.stringify(meta, null, 2) + '\n'));
    await fsyncFile(tmp.img);
    await fs.promises.rename(tmp.img, at(key, '.ksimg'));
    await fs.promises.rename(tmp.tor, at(key, '.torrent'));
    await fs.promises.rename(tmp.json, at(key, '.json'));
    await fsyncFile(w.dir);
    return meta;
  } catch (err) {
    for (const f of Object.values(tmp)) await fs.promises.rm(f, { force: true });
    throw err;
  }
}

function pick(h: { rawSize: number; chunkSize: number; chunkCount: number; storedChunks: number; sha256: string }) {
  return { rawSize: h.rawSize, chunkSize: h.chunkSize, chunkCount: h.chunkCount, storedChunks: h.storedChunks, sha256: h.sha256 };
}
