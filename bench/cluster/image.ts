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
 *
 * `mixed`: 3/8 pseudo-random bytes, 1/4 text (words from a small vocabulary,
 * deflate shrinks it about 3x), 3/8 zeros: every chunk codec and the sparse
 * path in sizes that scale with the image (512 MiB stores as about 300 MB).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { buildSyntheticDisk } from '../../server/demo/disk.js';

export const DATA_KINDS = ['random', 'synthetic', 'mixed'] as const;
export type DataKind = (typeof DATA_KINDS)[number];

const MiB = 1024 * 1024;

/** Writes `mib` MiB of image data to `file`. */
export async function writeBenchImage(file: string, mib: number, kind: DataKind, seed = 'kickswarm-bench-cluster'): Promise<void> {
  if (kind === 'synthetic') {
    await buildSyntheticDisk(file, mib, { name: 'bench' });
    return;
  }
  if (kind === 'mixed') return writeMixedImage(file, mib, seed);
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
    for (let at = 0; at < bytes;) {
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

const WORDS = (
  'the of and to in is was for on that with as by at from his her which or were are be this an not had have but their ' +
  'kernel module device driver partition filesystem mount boot loader image chunk piece swarm tracker node cluster frontend ' +
  'install kickstart profile template network address route packet frame buffer queue thread process memory page cache'
).split(' ');

/** The `mixed` kind: random, then text, then zeros (3/8, 1/4, 3/8 of `mib`). */
function writeMixedImage(file: string, mib: number, seed: string): void {
  const total = mib * MiB;
  const randomPart = Math.floor((mib * 3) / 8) * MiB;
  const textPart = Math.floor(mib / 4) * MiB;
  const key = crypto.createHash('sha256').update(seed).digest();
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < randomPart; at += MiB) fs.writeSync(fd, cipher.update(zeros));
    const text = Buffer.alloc(MiB);
    for (let at = 0; at < textPart; at += MiB) {
      const pick = cipher.update(zeros.subarray(0, MiB / 4));
      let o = 0;
      for (let i = 0; o < MiB; i = (i + 1) % pick.length) {
        const w = WORDS[pick[i]! % WORDS.length]!;
        o += text.write(pick[i]! % 13 === 0 ? `${w}\n` : `${w} `, o, 'latin1');
      }
      fs.writeSync(fd, text);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.truncateSync(file, total);
}
