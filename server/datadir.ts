/**
 * The data dir: everything a frontend owns lives under one folder.
 *
 *   inventory.sqlite   nodes, events, settings (WAL)
 *   api-token          bearer token for /api/v1 (0600, made on first start)
 *   kickswarm.yaml     optional config
 *   profiles/          admin-editable profiles (copied from the shipped set once)
 *   templates/         admin-editable Handlebars templates (copied once)
 *   images/            chunked images and their torrents
 *   tftpboot/          static TFTP files (pxelinux.0 ...), unless --tftp-root
 *
 * The inventory holds node attributes such as BMC passwords, and the config
 * may hold tokens: the data dir is mode 0700 and the files that hold secrets
 * (the inventory with its -wal/-shm, kickswarm.yaml, the tokens) 0600. Both
 * are set on every ensureDataDir(), so a data dir made by an older version,
 * or loosened by hand, is tightened on the next start.
 *
 *   serve.lock         PID of the `kickswarm serve` using the data dir (./lock.ts)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnavailableError } from '../protocol/errors.js';

/** The repository/package root (where the shipped profiles/ and templates/ live). */
export const PACKAGE_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('kickswarm package root not found');
    dir = up;
  }
  return dir;
})();

/** The version in the package's package.json (`--version`). */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export interface DataDir {
  root: string;
  db: string;
  tokenFile: string;
  /** Secret the per-node capture tokens are derived from (0600). */
  profiles: string;
  templates: string;
  images: string;
  tftpboot: string;
}

export function dataDirPaths(root: string): DataDir {
  const r = path.resolve(root);
  return {
    root: r,
    db: path.join(r, 'inventory.sqlite'),
    tokenFile: path.join(r, 'api-token'),
    profiles: path.join(r, 'profiles'),
    templates: path.join(r, 'templates'),
    images: path.join(r, 'images'),
    tftpboot: path.join(r, 'tftpboot'),
  };
}

/** `--data-dir`, else `$KICKSWARM_DATA_DIR`, else `./kickswarm-data`. */
export function resolveDataDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.KICKSWARM_DATA_DIR ?? 'kickswarm-data');
}

/**
 * Creates the data dir's folders, copies the shipped profiles and templates on
 * first use (an existing folder is never touched: those are the admin's; only
 * a template folder new in this version, such as `templates/ipxe/`, is added), and
 * returns the paths. A data dir that cannot be made or written is an
 * UnavailableError naming it and the reason.
 */
export function ensureDataDir(root: string): DataDir {
  const d = dataDirPaths(root);
  try {
    return populate(d);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!err.code) throw e;
    const why = err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS' ? 'is not writable' : 'cannot be used';
    throw new UnavailableError(`data dir ${d.root} ${why}: ${err.code}${err.path && err.path !== d.root ? ` (${err.path})` : ''}`, { root: d.root });
  }
}

function populate(d: DataDir): DataDir {
  fs.mkdirSync(d.root, { recursive: true, mode: 0o700 });
  restrictModes(d);
  for (const [shipped, dest] of [
    [path.join(PACKAGE_ROOT, 'profiles'), d.profiles],
    [path.join(PACKAGE_ROOT, 'templates'), d.templates],
  ] as const) {
    if (!fs.existsSync(dest)) fs.cpSync(shipped, dest, { recursive: true });
  }
  for (const ent of fs.readdirSync(path.join(PACKAGE_ROOT, 'templates'), { withFileTypes: true })) {
    const dest = path.join(d.templates, ent.name);
    if (!ent.isDirectory() || fs.existsSync(dest)) continue;
    try {
      fs.cpSync(path.join(PACKAGE_ROOT, 'templates', ent.name), dest, { recursive: true });
    } catch {
      // a read-only data dir: the render set then names the missing templates
    }
  }
  fs.mkdirSync(d.images, { recursive: true });
  fs.mkdirSync(d.tftpboot, { recursive: true });
  return d;
}

/** Files of the data dir that hold secrets (mode 0600). */
export function secretFiles(d: DataDir): string[] {
  return [d.db, `${d.db}-wal`, `${d.db}-shm`, `${d.db}-journal`, path.join(d.root, 'kickswarm.yaml'), d.tokenFile];
}

/**
 * Data dir 0700; every secret file 0600, the inventory created empty with
 * that mode before SQLite opens it (SQLite gives its -wal and -shm the
 * database file's mode). Files owned by someone else are left alone.
 */
export function restrictModes(d: DataDir): void {
  chmodIfLooser(d.root, 0o700);
  try {
    fs.closeSync(fs.openSync(d.db, fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o600));
  } catch {
    // unwritable (read-only data dir): the inventory's own open reports it
  }
  for (const f of secretFiles(d)) chmodIfLooser(f, 0o600);
}

function chmodIfLooser(file: string, mode: number): void {
  try {
    const st = fs.statSync(file);
    if ((st.mode & 0o777 & ~mode) !== 0 && (typeof process.getuid !== 'function' || st.uid === process.getuid())) fs.chmodSync(file, mode);
  } catch {
    // absent: nothing to tighten
  }
}

/** Reads a secret file, creating a random secret (mode 0600) when absent. */
function ensureSecret(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const token = crypto.randomBytes(24).toString('base64url');
    try {
      fs.writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
      return token;
    } catch {
      return fs.readFileSync(file, 'utf8').trim();
    }
  }
}

/** The `/api/v1` bearer token (`api-token`), made on first start. */
export function ensureApiToken(d: DataDir): string {
  return ensureSecret(d.tokenFile);
}
