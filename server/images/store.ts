/**
 * The image repository: one folder (the data dir's `images/`) holding, per
 * image version,
 *
 *   <key>.ksimg     the chunked image (protocol/image-format)
 *   <key>.torrent   its torrent, addressed to the frontend URL known at add time
 *   <key>.json      metadata; written last, so a version exists iff its .json does
 *
 * where `<key>` is `NAME` for version 1 (so stores made before versions are
 * version 1 of each image, unchanged) and `NAME@N` for version N >= 2. The
 * optional `<name>.current` holds the number of the current version (written by
 * a rollback); absent, or naming a missing version, the newest is current.
 * `NAME` alone always means the current version; `NAME@N` exactly version N.
 *
 * `add` of an existing name adds the next version and makes it current. It is
 * atomic: everything is written under temporary names, fsynced and renamed,
 * and a failure or abort removes every temporary file. Changes to one image (in
 * this process or another) exclude each other through `<name>.lock` holding the
 * owner's pid; a lock whose pid is gone is stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { type ImageRef, MAX_IMAGE_VERSION, parseImageName, parseImageRef, type SimpleName } from '../../protocol/node.js';
import { lockImage, versionKey, writeFileAtomicSync } from './store-fs.js';
import { writeVersion } from './store-write.js';
import { retargetTorrent, torrentUrls } from './torrent.js';

export type { ImageMeta } from '../../protocol/api.js';
import type { ImageMeta } from '../../protocol/api.js';

/** One image with all its versions (oldest first). */
export interface ImageVersions {
  name: string;
  /** The version `name` alone resolves to. */
  current: number;
  versions: ImageMeta[];
}

export type { AddOptions, AddProgress } from './store-write.js';
import type { AddOptions } from './store-write.js';

export interface ImageStoreOptions {
  /** Frontend URL written into the stored torrents (served torrents are re-addressed per request). */
  frontendUrl?: string;
  now?: () => Date;
}

/** Who uses what: answers are descriptions such as `profile compute` or `node c0-1`. */
export type UsersOf = (ref: ImageRef) => string[];

export { versionKey };

export class ImageStore {
  private readonly adding = new Set<string>();
  private readonly frontendUrl: string;
  private readonly now: () => Date;

  constructor(
    readonly dir: string,
    opts: ImageStoreOptions = {},
  ) {
    this.frontendUrl = opts.frontendUrl ?? 'http://127.0.0.1:8080';
    this.now = opts.now ?? (() => new Date());
  }

  /** Validates an image name (protocol parseImageName: no path tricks, not one of the store's own file names, no version). */
  static parseName(input: string): SimpleName {
    return parseImageName(input);
  }

  /** Validates `NAME` or `NAME@N`. */
  static parseRef(input: string): ImageRef {
    return parseImageRef(input);
  }

  /**
   * Path of the image file of `ref` (whether or not it exists): the exact
   * version for `NAME@N`, the current version for `NAME`.
   */
  path(ref: string): string {
    const r = parseImageRef(ref);
    const version = r.version ?? this.currentVersion(r.name) ?? 1;
    return this.file(versionKey(r.name, version), '.ksimg');
  }

  private file(key: string, ext: string): string {
    return path.join(this.dir, `${key}${ext}`);
  }

  /** Version numbers of `name` present in the store, ascending. */
  private versionNumbers(name: string): number[] {
    let files: string[];
    try {
      files = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: number[] = [];
    for (const f of files) {
      if (f === `${name}.json`) out.push(1);
      else if (f.startsWith(`${name}@`) && f.endsWith('.json') && !f.includes('.tmp-')) {
        const v = f.slice(name.length + 1, -5);
        if (/^[1-9]\d{0,5}$/.test(v) && v !== '1') out.push(Number(v));
      }
    }
    return out.sort((a, b) => a - b);
  }

  /** The version `name` alone means now (the `.current` pointer if valid, else the newest); undefined when there is none. */
  private currentVersion(name: string): number | undefined {
    try {
      const v = Number(fs.readFileSync(this.file(name, '.current'), 'utf8').trim());
      if (Number.isInteger(v) && v >= 1 && v <= MAX_IMAGE_VERSION && fs.existsSync(this.file(versionKey(name, v), '.json'))) return v;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return this.versionNumbers(name).at(-1);
  }

  private readMeta(name: SimpleName, version: number): ImageMeta | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file(versionKey(name, version), '.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const m = JSON.parse(text) as Omit<ImageMeta, 'version' | 'ref'> & Partial<ImageMeta>;
    // Stores written before versions existed have neither field: their images are version 1.
    return { ...m, name, version, ref: `${name}@${version}` } as ImageMeta;
  }

  /** Metadata of `NAME@N`, or of NAME's current version; NotFoundError when absent. */
  get(ref: string): ImageMeta {
    const r = parseImageRef(ref);
    const version = r.version ?? this.currentVersion(r.name);
    const m = version === undefined ? undefined : this.readMeta(r.name, version);
    if (m) return m;
    if (r.version === undefined || this.versionNumbers(r.name).length === 0) throw new NotFoundError(`no image named ${r.name}`, { image: r.name });
    throw new NotFoundError(`image ${r.name} has no version ${r.version} (versions: ${this.versionNumbers(r.name).join(', ')})`, { image: r.ref });
  }

  has(ref: string): boolean {
    try {
      this.get(ref);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /**
   * What a kickstart names for `ref`: the exact version (`name` is `NAME@N`),
   * its SHA-256 and raw size; undefined when unknown or malformed.
   */
  lookup(ref: string): { name: string; version: number; sha256: string; rawSize: number } | undefined {
    try {
      const m = this.get(ref);
      return { name: m.ref, version: m.version, sha256: m.sha256, rawSize: m.rawSize };
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof InvalidInputError) return undefined;
      throw err;
    }
  }

  /** One image with every version; NotFoundError when absent. */
  versions(name: string): ImageVersions {
    const n = parseImageName(name);
    const versions = this.versionNumbers(n)
      .map((v) => this.readMeta(n, v))
      .filter((m): m is ImageMeta => m !== undefined);
    const current = this.currentVersion(n);
    if (!versions.length || current === undefined) throw new NotFoundError(`no image named ${n}`, { image: n });
    return { name: n, current, versions };
  }

  /** Every image with its versions, sorted by name. */
  listAll(): ImageVersions[] {
    let files: string[];
    try {
      files = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const names = new Set<string>();
    for (const f of files) {
      if (!f.endsWith('.json') || f.includes('.tmp-')) continue;
      try {
        names.add(parseImageRef(f.slice(0, -5)).name);
      } catch {
        // not one of ours
      }
    }
    const out: ImageVersions[] = [];
    for (const n of [...names].sort((a, b) => a.localeCompare(b))) {
      try {
        out.push(this.versions(n));
      } catch {
        // removed meanwhile, or unreadable metadata
      }
    }
    return out;
  }

  /** The current version of every image, sorted by name. */
  list(): ImageMeta[] {
    return this.listAll().map((i) => i.versions.find((m) => m.version === i.current)!);
  }

  /** Every version of every image (what the swarm seeds). */
  allVersions(): ImageMeta[] {
    return this.listAll().flatMap((i) => i.versions);
  }

  /** The stored torrent file of `ref`; NotFoundError when the image is absent. */
  torrent(ref: string): Buffer {
    const m = this.get(ref);
    return fs.readFileSync(this.file(versionKey(m.name, m.version), '.torrent'));
  }

  /**
   * The torrent of `ref` as the frontend at `frontendUrl` serves it: announce
   * there, web seed the exact version's URL (`/install/images/NAME@N`, so the
   * bytes cannot change under it); the info-hash is the stored torrent's.
   */
  async servedTorrent(ref: string, frontendUrl: string): Promise<Buffer> {
    const m = this.get(ref);
    const stored = fs.readFileSync(this.file(versionKey(m.name, m.version), '.torrent'));
    return (await retargetTorrent(stored, torrentUrls(frontendUrl, m.ref))).torrent;
  }

  /**
   * Removes a whole image (`NAME`) or one version (`NAME@N`). `inUse` names
   * whoever still uses it (profiles, nodes, running installs); any answer makes
   * this a ConflictError naming them. The current version of an image with
   * other versions cannot be removed alone (roll back first).
   */
  remove(ref: string, opts: { inUse?: UsersOf } = {}): void {
    const r = parseImageRef(ref);
    const all = this.versions(r.name);
    if (r.version !== undefined) this.get(r.ref);
    const whole = r.version === undefined || all.versions.length === 1;
    const users = opts.inUse?.(whole ? { name: r.name, ref: r.name } : r) ?? [];
    if (users.length) throw new ConflictError(`image ${whole ? r.name : r.ref} is in use by ${users.join(', ')}`, { users });
    if (!whole && r.version === all.current) {
      throw new ConflictError(`${r.ref} is the current version of ${r.name}; make another current first (kickswarm image rollback ${r.name})`);
    }
    if (this.adding.has(r.name)) throw new ConflictError(`image ${r.name} is being added`);
    this.withLock(r.name, () => {
      for (const m of whole ? all.versions : all.versions.filter((v) => v.version === r.version)) this.removeFiles(m);
      if (whole) fs.rmSync(this.file(r.name, '.current'), { force: true });
    });
  }

  private removeFiles(m: ImageMeta): void {
    const key = versionKey(m.name, m.version);
    fs.rmSync(this.file(key, '.json'), { force: true });
    fs.rmSync(this.file(key, '.ksimg'), { force: true });
    fs.rmSync(this.file(key, '.torrent'), { force: true });
  }

  private withLock<T>(name: string, fn: () => T): T {
    fs.mkdirSync(this.dir, { recursive: true });
    const release = lockImage(this.dir, name);
    try {
      return fn();
    } finally {
      release();
    }
  }

  /**
   * Makes version `to` (default: the newest version older than the current
   * one) current. ConflictError when there is no older version; NotFoundError
   * when `to` does not exist.
   */
  rollback(name: string, to?: number): { from: ImageMeta; to: ImageMeta } {
    const n = parseImageName(name);
    return this.withLock(n, () => {
      const all = this.versions(n);
      const from = all.versions.find((m) => m.version === all.current)!;
      const target = to === undefined ? all.versions.filter((m) => m.version < all.current).at(-1) : this.get(`${n}@${to}`);
      if (!target) throw new ConflictError(`image ${n} has no version older than its current ${from.ref}`);
      writeFileAtomicSync(this.file(n, '.current'), `${target.version}\n`);
      return { from, to: target };
    });
  }

  /**
   * Removes the versions of `name` other than the current one and the `keep`
   * newest. Nothing is removed when any of them is still used (`usersOf`):
   * ConflictError naming each version and its users. Returns what was removed.
   */
  prune(name: string, keep: number, opts: { usersOf?: UsersOf } = {}): ImageMeta[] {
    if (!Number.isInteger(keep) || keep < 1) throw new InvalidInputError(`--keep must be a whole number of at least 1, not ${keep}`);
    const n = parseImageName(name);
    return this.withLock(n, () => {
      const all = this.versions(n);
      const newestFirst = [...all.versions].reverse();
      const doomed = newestFirst.slice(keep).filter((m) => m.version !== all.current);
      const pinned = doomed.map((m) => ({ m, users: opts.usersOf?.({ name: n, version: m.version, ref: m.ref }) ?? [] })).filter((p) => p.users.length);
      if (pinned.length) {
        const what = pinned.map((p) => `${p.m.ref} (used by ${p.users.join(', ')})`).join('; ');
        throw new ConflictError(`nothing pruned: ${what}; change those first or keep more versions`, { pinned: pinned.map((p) => ({ ref: p.m.ref, users: p.users })) });
      }
      for (const m of doomed) this.removeFiles(m);
      return doomed.reverse();
    });
  }

  /**
   * Imports `file` as the next version of `name` (version 1 when new) and
   * makes it current: a raw disk image is converted; a file already in the
   * chunked format (recognised by its magic) is verified in full and copied
   * (renamed with `move`). ConflictError when the name is being changed, or
   * exists and `newOnly` is set.
   */
  async add(file: string, name: string, opts: AddOptions = {}): Promise<ImageMeta> {
    const n = parseImageName(name);
    if (this.adding.has(n)) throw new ConflictError(`image ${n} is already being added`);
    this.adding.add(n);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      const release = lockImage(this.dir, n, 'already being added');
      try {
        const existing = this.versionNumbers(n);
        if (existing.length && opts.newOnly) throw new ConflictError(`image ${n} already exists`);
        const version = (existing.at(-1) ?? 0) + 1;
        if (version > MAX_IMAGE_VERSION) throw new ConflictError(`image ${n} has reached version ${MAX_IMAGE_VERSION}; add it under a new name`);
        const meta = await writeVersion({ dir: this.dir, file, name: n, version, frontendUrl: this.frontendUrl, createdAt: this.now(), opts });
        // The new version is the newest: dropping the pointer makes it current.
        fs.rmSync(this.file(n, '.current'), { force: true });
        return meta;
      } finally {
        release();
      }
    } finally {
      this.adding.delete(n);
    }
  }
}
