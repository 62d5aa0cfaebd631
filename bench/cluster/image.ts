/**
 * The raw disk image a benchmark run installs.
 *
 * `random` (the default): pseudo-random bytes (AES-CTR keystream, which
 * deflate cannot shrink, so every chunk is stored as is) with the last
 * sixteenth left as zeros, like a disk's free space: zero chunks are not
 * stored and never cross the network, so the sparse path is exercised, and
 * the bytes on the wire are ~15/16 of the image, independent of how well any
 * compressor does, and no CPU goes to inflating.
 *
 * `synthetic`: server/demo/disk.ts's partition table + ext4 root of mixed
 * compressibility (about a third of the raw size is stored): a realistic
 * image, but the transfer is short next to process start-up.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { buildSyntheticDisk } from '../../server/demo/disk.js';

export const DATA_KINDS = ['random', 'synthetic'] as const;
export type DataKind = (typeof DATA_KINDS)[number];

const MiB = 1024 * 1024;

/** Writes `mib` MiB of image data to `file`. */
export async function writeBenchImage(file: string, mib: number, kind: DataKind, seed = 'kickswarm-bench-cluster'): Promise<void> {
  if (kind === 'synthetic') {
    await buildSyntheticDisk(file, mib, { name: 'bench' });
    return;
  }
  const total = mib * MiB;
  const randomBytes = total - Math.floor(mib / 16) * MiB;
  const key = crypto.createHash('sha256').update(seed).digest();
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < randomBytes; at += MiB) fs.writeSync(fd, cipher.update(zeros.subarray(0, Math.min(MiB, randomBytes - at))));
  } finally {
    fs.closeSync(fd);
  }
  fs.truncateSync(file, total);
}

/** SHA-256 of the first `bytes` bytes of a file (a target may be longer than the image). */
export function sha256Prefix(file: string, bytes: number): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let at = 0; at < bytes; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
