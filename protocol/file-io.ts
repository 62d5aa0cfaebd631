/**
 * File I/O the image code shares: full positional writes and hashing what a
 * target holds (protocol/target-file.ts opens and writes targets).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { CorruptImageError } from './errors.js';

/** Writes all of `buf` at `pos` (a positional write may write less than asked). */
export async function writeFully(fh: fs.promises.FileHandle, buf: Buffer, pos: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
    done += bytesWritten;
  }
}

/** SHA-256 (hex) of the first `bytes` bytes of `file`; CorruptImageError when it is shorter. */
export async function hashPrefix(file: string, bytes: number): Promise<string> {
  const h = crypto.createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (let at = 0; at < bytes;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - at), at);
      if (bytesRead === 0) throw new CorruptImageError(`target ${file} is shorter than the image`);
      h.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}
