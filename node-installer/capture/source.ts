/**
 * The disk (or file) a capture reads: opened read-only, its size found once,
 * read chunk by chunk at absolute positions so both capture passes, and
 * several reads in flight, never share a file offset.
 *
 * Size: a regular file's comes from fstat. A block device's fstat size is 0,
 * so it comes from sysfs (`/sys/class/block/<dev>/size`, in 512-byte sectors,
 * the number `blockdev --getsize64` derives from the same ioctl), else from
 * probing: a binary search for the last readable byte with 1-byte positional
 * reads (about 60 reads; works for anything that can be read at a position).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError, KickswarmError } from '../../protocol/errors.js';

export type SourceKind = 'file' | 'block-device';

export interface CaptureSource {
  readonly path: string;
  readonly kind: SourceKind;
  /** Bytes in the source when it was opened. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `position`. Throws SourceChangedError when
   * the source ends early (it shrank) and the read error otherwise.
   */
  read(position: number, length: number): Promise<Buffer>;
  /** The size now; SourceChangedError when it differs from `size`. */
  checkSize(): Promise<void>;
  close(): Promise<void>;
}

/** The source's content or size changed while it was being captured. */
export class SourceChangedError extends KickswarmError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Largest byte position a probe considers (2^53 - 1, the largest safe integer). */
const MAX_PROBE = Number.MAX_SAFE_INTEGER;

/**
 * The size of whatever `fh` reads by probing: the smallest position where a
 * 1-byte positional read returns nothing.
 */
export async function probeSize(fh: fs.promises.FileHandle): Promise<number> {
  const one = Buffer.alloc(1);
  const readable = async (pos: number): Promise<boolean> => (await fh.read(one, 0, 1, pos)).bytesRead === 1;
  if (!(await readable(0))) return 0;
  let lo = 0; // readable
  let hi = 1; // first guess that is not
  while (hi < MAX_PROBE && (await readable(hi))) {
    lo = hi;
    hi = Math.min(MAX_PROBE, hi * 2);
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (await readable(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}

/** A block device's size from sysfs, or undefined when sysfs does not say. */
export function sysfsBlockSize(devicePath: string, sysBlock = '/sys/class/block'): number | undefined {
  try {
    const name = path.basename(fs.realpathSync(devicePath));
    const sectors = fs.readFileSync(path.join(sysBlock, name, 'size'), 'utf8').trim();
    if (!/^\d{1,16}$/.test(sectors)) return undefined;
    const bytes = Number(sectors) * 512;
    return Number.isSafeInteger(bytes) ? bytes : undefined;
  } catch {
    return undefined;
  }
}

async function currentSize(kind: SourceKind, file: string, fh: fs.promises.FileHandle): Promise<number> {
  if (kind === 'file') return (await fh.stat()).size;
  return sysfsBlockSize(file) ?? (await probeSize(fh));
}

/**
 * Opens `file` for capture. InvalidInputError when it does not exist, is not
 * a regular file or block device (a pipe cannot be read twice), or is empty.
 */
export async function openCaptureSource(file: string): Promise<CaptureSource> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InvalidInputError(`--source ${file}: ${code === 'ENOENT' ? 'no such file or device' : (e as Error).message}`);
  }
  const kind: SourceKind | undefined = st.isFile() ? 'file' : st.isBlockDevice() ? 'block-device' : undefined;
  if (!kind) throw new InvalidInputError(`--source ${file} is neither a disk (block device) nor a regular file`);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KickswarmError(code === 'EACCES' || code === 'EPERM' ? 'forbidden' : 'internal', `cannot open ${file}: ${(e as Error).message}`);
  }
  let size: number;
  try {
    size = await currentSize(kind, file, fh);
  } catch (e) {
    await fh.close();
    throw e;
  }
  if (size === 0) {
    await fh.close();
    throw new InvalidInputError(`--source ${file} is empty; nothing to capture`);
  }
  let closed = false;
  return {
    path: file,
    kind,
    size,
    async read(position, length) {
      const buf = Buffer.allocUnsafe(length);
      for (let done = 0; done < length;) {
        const { bytesRead } = await fh.read(buf, done, length - done, position + done);
        if (bytesRead === 0) {
          throw new SourceChangedError(`${file} ended at byte ${position + done}, but had ${size} bytes when the capture began (the source shrank)`);
        }
        done += bytesRead;
      }
      return buf;
    },
    async checkSize() {
      const now = await currentSize(kind, file, fh);
      if (now !== size) throw new SourceChangedError(`${file} is now ${now} bytes, it had ${size} when the capture began`);
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}
