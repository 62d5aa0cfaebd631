/**
 * The image repository: one folder (the data dir's `images/`) holding, per image,
 *
 *   <name>.ksimg     the chunked image (protocol/image-format)
 *   <name>.torrent   its torrent, addressed to the frontend URL known at add time
 *   <name>.json      metadata; written last, so an image exists iff its .json does
 *
 * `add` is atomic: everything is written under temporary names, fsynced and
 * renamed, and a failure or abort removes every temporary file. Adds of the
 * same name (in this process or another) exclude each other through a
 * `<name>.lock` file holding the owner's pid; a lock whose pid is gone is stale.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { isImageMagic, verifyImage, writeImage } from '../../protocol/image-format.js';
import { parseImageName, type SimpleName } from '../../protocol/node.js';
import type { ImageMeta } from '../../protocol/api.js';
import { makeTorrent, retargetTorrent, torrentUrls } from './torrent.js';

export type { ImageMeta } from '../../protocol/api.js';

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
}

export interface ImageStoreOptions {
  /** Frontend URL written into the stored torrents (served torrents are re-addressed per request). */
  frontendUrl?: string;
  now?: () => Date;
}


export class ImageStore {
  private readonly adding = new Set<string>();
  private readonly frontendUrl: string;
  private readonly now: () => Date;

  constructor(readonly dir: string, opts: ImageStoreOptions = {}) {
    this.frontendUrl = opts.frontendUrl ?? 'http://127.0.0.1:8080';
    this.now = opts.now ?? (() => new Date());
  }

  /** Validates an image name (protocol parseImageName: no path tricks, not one of the store's own file names). */
  static parseName(input: string): SimpleName {
    return parseImageName(input);
  }

  /** Path of the image file (whether or not it exists). */
  path(name: string): string {
    return path.join(this.dir, `${ImageStore.parseName(name)}.ksimg`);
  }

  private file(name: string, ext: string): string {
    return path.join(this.dir, `${name}${ext}`);
  }

  /** Metadata of an image; NotFoundError when absent. */
  get(name: string): ImageMeta {
    const n = ImageStore.parseName(name);
    try {
      return JSON.parse(fs.readFileSync(this.file(n, '.json'), 'utf8')) as ImageMeta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no image named ${n}`);
      throw err;
    }
  }

  has(name: string): boolean {
    return fs.existsSync(this.file(ImageStore.parseName(name), '.json'));
  }

  /** All images, sorted by name. */
  list(): ImageMeta[] {
    let files: string[];
    try {
      files = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return files
      .filter((f) => f.endsWith('.json') && !f.includes('.tmp-'))
      .map((f) => {
        try {
          return this.get(f.slice(0, -5));
        } catch {
          return undefined;
        }
      })
      .filter((m): m is ImageMeta => m !== undefined)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The stored torrent file; NotFoundError when the image is absent. */
  torrent(name: string): Buffer {
    const n = ImageStore.parseName(name);
    this.get(n);
    return fs.readFileSync(this.file(n, '.torrent'));
  }

  /**
   * The torrent as the frontend at `frontendUrl` serves it: announce and web
   * seed point there; the info-hash is the stored torrent's (no re-hashing).
   */
  async servedTorrent(name: string, frontendUrl: string): Promise<Buffer> {
    const n = ImageStore.parseName(name);
    return (await retargetTorrent(this.torrent(n), torrentUrls(frontendUrl, n))).torrent;
  }

  /**
   * Removes an image. `inUse` names whoever still uses it (profiles, running
   * installs); any answer makes this a ConflictError naming them.
   */
  remove(name: string, opts: { inUse?: (name: string) => string[] } = {}): void {
    const n = ImageStore.parseName(name);
    this.get(n);
    const users = opts.inUse?.(n) ?? [];
    if (users.length) throw new ConflictError(`image ${n} is in use by ${users.join(', ')}`, { users });
    if (this.adding.has(n)) throw new ConflictError(`image ${n} is being added`);
    fs.rmSync(this.file(n, '.json'), { force: true });
    fs.rmSync(this.file(n, '.ksimg'), { force: true });
    fs.rmSync(this.file(n, '.torrent'), { force: true });
  }

  /**
   * Imports `file` as image `name`: a raw disk image is converted; a file
   * already in the chunked format (recognised by its magic) is verified in full
   * and copied (renamed with `move`). ConflictError when the name exists or is
   * being added.
   */
  async add(file: string, name: string, opts: AddOptions = {}): Promise<ImageMeta> {
    const n = ImageStore.parseName(name);
    if (this.adding.has(n)) throw new ConflictError(`image ${n} is already being added`);
    this.adding.add(n);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      const release = this.lock(n);
      try {
        if (this.has(n)) throw new ConflictError(`image ${n} already exists (remove it first)`);
        return await this.build(file, n, opts);
      } finally {
        release();
      }
    } finally {
      this.adding.delete(n);
    }
  }

  private async build(file: string, n: SimpleName, opts: AddOptions): Promise<ImageMeta> {
    const st = await fs.promises.stat(file).catch(() => {
      throw new NotFoundError(`no such file: ${file}`);
    });
    if (st.isDirectory()) throw new InvalidInputError(`${file} is a directory, not a disk image`);
    const tag = `.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    const tmp = { img: this.file(n, `.ksimg${tag}`), tor: this.file(n, `.torrent${tag}`), json: this.file(n, `.json${tag}`) };
    const report = opts.onProgress ?? (() => {});
    try {
      let summary: Omit<ImageMeta, 'name' | 'createdAt' | 'infoHash'>;
      if (await startsWithMagic(file)) {
        await (opts.move ? moveFile(file, tmp.img) : fs.promises.copyFile(file, tmp.img));
        const h = await verifyImage(tmp.img, { signal: opts.signal, onProgress: (done, total) => report({ phase: 'verify', done, total }) });
        summary = { ...pick(h), storedSize: (await fs.promises.stat(tmp.img)).size };
      } else {
        const s = await writeImage(file, tmp.img, { signal: opts.signal, chunkSize: opts.chunkSize }, (p) =>
          report({ phase: 'convert', done: p.rawDone, total: p.rawSize }),
        );
        summary = s;
      }
      opts.signal?.throwIfAborted();
      report({ phase: 'torrent', done: 0, total: summary.storedSize });
      const t = await makeTorrent(tmp.img, n, torrentUrls(this.frontendUrl, n), {
        onProgress: (hashed) => report({ phase: 'torrent', done: Math.min(hashed, summary.storedSize), total: summary.storedSize }),
      });
      report({ phase: 'torrent', done: summary.storedSize, total: summary.storedSize });
      opts.signal?.throwIfAborted();
      const meta: ImageMeta = {
        name: n,
        rawSize: summary.rawSize,
        storedSize: summary.storedSize,
        chunkSize: summary.chunkSize,
        chunkCount: summary.chunkCount,
        storedChunks: summary.storedChunks,
        sha256: summary.sha256,
        createdAt: this.now().toISOString(),
        infoHash: t.infoHash,
      };
      await writeSynced(tmp.tor, t.torrent);
      await writeSynced(tmp.json, Buffer.from(JSON.stringify(meta, null, 2) + '\n'));
      await fsyncFile(tmp.img);
      await fs.promises.rename(tmp.img, this.file(n, '.ksimg'));
      await fs.promises.rename(tmp.tor, this.file(n, '.torrent'));
      await fs.promises.rename(tmp.json, this.file(n, '.json'));
      await fsyncFile(this.dir);
      return meta;
    } catch (err) {
      for (const f of Object.values(tmp)) await fs.promises.rm(f, { force: true });
      throw err;
    }
  }

  /** Takes `<name>.lock` (O_EXCL); steals it when its pid is dead; removes leftovers of a dead add. */
  private lock(n: string): () => void {
    const lockPath = this.file(n, '.lock');
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw new ConflictError(`image ${n} is already being added`);
        const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
        if (pidAlive(pid)) throw new ConflictError(`image ${n} is already being added (pid ${pid})`);
        fs.rmSync(lockPath, { force: true });
      }
    }
    for (const f of fs.readdirSync(this.dir)) {
      if (f.startsWith(`${n}.`) && f.includes('.tmp-') && !pidAlive(Number(f.split('.tmp-')[1]!.split('-')[0]))) {
        fs.rmSync(path.join(this.dir, f), { force: true });
      }
    }
    return () => fs.rmSync(lockPath, { force: true });
  }
}

function pick(h: { rawSize: number; chunkSize: number; chunkCount: number; storedChunks: number; sha256: string }) {
  return { rawSize: h.rawSize, chunkSize: h.chunkSize, chunkCount: h.chunkCount, storedChunks: h.storedChunks, sha256: h.sha256 };
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function startsWithMagic(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    return isImageMagic(b.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

async function writeSynced(file: string, data: Buffer): Promise<void> {
  const fh = await fs.promises.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncFile(p: string): Promise<void> {
  const fh = await fs.promises.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Renames `from` to `to`, or copies and removes it when they are on different file systems. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.promises.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fs.promises.copyFile(from, to);
    await fs.promises.rm(from, { force: true });
  }
}
