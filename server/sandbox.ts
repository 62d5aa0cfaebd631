/**
 * The TFTP root sandbox, shared by TFTP and the PXE service (static configs).
 * A requested name is checked as text first (no NUL, control characters,
 * backslashes, `..` segments or absolute paths once one
 * leading `/` is stripped), then resolved with realpath and required to land
 * on a regular file strictly inside the real root, so a symlink that points
 * outside is refused too. Nothing outside the root can ever be opened.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export type NameCheck = { ok: true; rel: string } | { ok: false; reason: string };

/**
 * Checks a name as the client sent it and returns it relative to the root
 * (one leading `/` stripped, empty and `.` segments dropped).
 */
export function checkRequestName(name: string): NameCheck {
  if (name.includes('\0')) return { ok: false, reason: 'NUL byte in name' };
  if (/[\x01-\x1f\x7f]/.test(name)) return { ok: false, reason: 'control character in name' };
  if (name.includes('\\')) return { ok: false, reason: 'backslash in name' };
  const stripped = name.startsWith('/') ? name.slice(1) : name;
  if (stripped.startsWith('/')) return { ok: false, reason: 'absolute path' };
  const segments = stripped.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return { ok: false, reason: '".." segment in name' };
  if (segments.length === 0) return { ok: false, reason: 'empty name' };
  return { ok: true, rel: segments.join('/') };
}

/** Why a checked name cannot be served. `denied` maps to TFTP "Access violation", `not_found` to "File not found". */
export type Refusal = { ok: false; why: 'denied' | 'not_found'; reason: string };

export type OpenedFile = { ok: true; path: string; size: number; handle: fsp.FileHandle };

/** True when `p` is strictly below `root` (both real, absolute paths). */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function refusalFor(e: unknown): Refusal {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, why: 'not_found', reason: 'no such file' };
  if (code === 'EACCES' || code === 'EPERM') return { ok: false, why: 'denied', reason: 'permission denied' };
  if (code === 'ELOOP') return { ok: false, why: 'denied', reason: 'symlink loop' };
  if (code === 'EISDIR') return { ok: false, why: 'not_found', reason: 'a directory is not a file' };
  return { ok: false, why: 'not_found', reason: `cannot open (${code ?? String(e)})` };
}

/**
 * Opens `rel` (already passed through checkRequestName) below `realRoot`
 * (the root's realpath). The caller owns the returned handle.
 */
export async function openInRoot(realRoot: string, rel: string): Promise<OpenedFile | Refusal> {
  let real: string;
  try {
    real = await fsp.realpath(path.join(realRoot, rel));
  } catch (e) {
    return refusalFor(e);
  }
  if (!isInside(realRoot, real)) {
    return real === realRoot ? { ok: false, why: 'not_found', reason: 'a directory is not a file' } : { ok: false, why: 'denied', reason: 'resolves outside the TFTP root' };
  }
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    return refusalFor(e);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      return { ok: false, why: 'not_found', reason: st.isDirectory() ? 'a directory is not a file' : 'not a regular file' };
    }
    return { ok: true, path: real, size: st.size, handle };
  } catch (e) {
    await handle.close().catch(() => undefined);
    return refusalFor(e);
  }
}

/**
 * Reads a small file (a static pxelinux.cfg file) below `root` under the same
 * rules, synchronously; undefined when it is absent, refused or larger than
 * `maxBytes`.
 */
export function readSmallFileInRoot(root: string, rel: string, maxBytes = 1 << 20): Buffer | undefined {
  const check = checkRequestName(rel);
  if (!check.ok) return undefined;
  let fd: number | undefined;
  try {
    const realRoot = fs.realpathSync(root);
    const real = fs.realpathSync(path.join(realRoot, check.rel));
    if (!isInside(realRoot, real)) return undefined;
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    return fs.readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
