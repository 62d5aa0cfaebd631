/**
 * File helpers of the image store: durable writes, renames across file
 * systems, and the per-image `<name>.lock` that makes changes to one image
 * (adds, rollbacks, prunes, removals) exclude each other across processes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError } from '../../protocol/errors.js';
import { isImageMagic } from '../../protocol/image-format.js';

/** File stem of an image version: `NAME` for version 1, `NAME@N` from version 2. */
export function versionKey(name: string, version: number): string {
  return version === 1 ? name : `${name}@${version}`;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>/<name>.lock` (O_EXCL, holding our pid); steals it when its pid
 * is dead and removes temporary files of `name` left by dead processes.
 * ConflictError (saying `busyWhat`) while a live process holds it. Returns the release.
 */
export function lockImage(dir: string, name: string, busyWhat = 'being changed'): () => void {
  const lockPath = path.join(dir, `${name}.lock`);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw new ConflictError(`image ${name} is ${busyWhat}`);
      const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
      if (pidAlive(pid)) throw new ConflictError(`image ${name} is ${busyWhat} (pid ${pid})`);
      fs.rmSync(lockPath, { force: true });
    }
  }
  for (const f of fs.readdirSync(dir)) {
    const owner = (f.startsWith(`${name}.`) || f.startsWith(`${name}@`)) && f.includes('.tmp-') ? Number(f.split('.tmp-')[1]!.split('-')[0]) : NaN;
    if (!Number.isNaN(owner) && !pidAlive(owner)) fs.rmSync(path.join(dir, f), { force: true });
  }
  return () => fs.rmSync(lockPath, { force: true });
}

export async function startsWithMagic(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    return isImageMagic(b.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export async function writeSynced(file: string, data: Buffer): Promise<void> {
  const fh = await fs.promises.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncFile(p: string): Promise<void> {
  const fh = await fs.promises.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `file` atomically (temporary file, fsync, rename), synchronously. */
export function writeFileAtomicSync(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Renames `from` to `to`, or copies and removes it when they are on different file systems. */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.promises.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fs.promises.copyFile(from, to);
    await fs.promises.rm(from, { force: true });
  }
}
