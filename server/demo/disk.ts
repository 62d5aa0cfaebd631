/**
 * A synthetic but realistic disk image for demos and benchmarks: an MBR
 * partition table with one Linux partition holding an ext4 root filesystem
 * (made with mke2fs -d, no root needed) full of files of mixed compressibility,
 * plus free space. Without e2fsprogs it falls back to the same layout with the
 * files' bytes laid out raw in the partition (no filesystem), and says so.
 * Deterministic for a given size and seed.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SECTOR = 512;
/** The partition starts at 1 MiB, as modern partitioners align it. */
export const PARTITION_OFFSET = MiB;

export interface SyntheticDisk {
  path: string;
  sizeBytes: number;
  /** `ext4` when mke2fs made a filesystem, `raw` for the fallback. */
  filesystem: 'ext4' | 'raw';
}

/** Writes a classic MBR with one primary partition of type 0x83 (Linux). */
export function mbr(diskBytes: number, startBytes = PARTITION_OFFSET): Buffer {
  const b = Buffer.alloc(SECTOR);
  const startLba = startBytes / SECTOR;
  const sectors = Math.floor(diskBytes / SECTOR) - startLba;
  const e = 446;
  b[e] = 0x80;
  b.writeUIntBE(0xfeffff, e + 1, 3);
  b[e + 4] = 0x83;
  b.writeUIntBE(0xfeffff, e + 5, 3);
  b.writeUInt32LE(startLba, e + 8);
  b.writeUInt32LE(sectors, e + 12);
  b.writeUInt32LE(crypto.randomBytes(4).readUInt32LE(0) || 1, 440);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

/** Deterministic pseudo-random bytes (AES-CTR keystream) from a seed. */
function prng(seed: string, n: number): Buffer {
  const key = crypto.createHash('sha256').update(seed).digest();
  const c = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return c.update(Buffer.alloc(n));
}

/** Text that compresses about as well as config files and man pages do. */
function textish(seed: string, n: number): Buffer {
  const words = ['kernel', 'cluster', 'node', 'install', 'swarm', 'piece', 'chunk', 'image', 'boot', 'frontend', 'compute', 'rack', 'the', 'of', 'and', 'a'];
  const r = prng(seed, n);
  const out: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = words[r[i % r.length]! % words.length]!;
    out.push(r[(i * 7) % r.length]! % 11 === 0 ? w + '\n' : w + ' ');
    len += w.length + 1;
  }
  return Buffer.from(out.join('')).subarray(0, n);
}

/** Fills `dir` with a root-filesystem-like tree totalling about `bytes`. */
function populateRoot(dir: string, bytes: number, name: string): void {
  for (const d of ['etc', 'boot', 'usr/bin', 'usr/lib', 'usr/share/doc', 'var/log', 'tmp', 'root', 'home']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/hostname'), `${name}\n`);
  fs.writeFileSync(path.join(dir, 'etc/os-release'), 'NAME="kickswarm demo"\nID=kickswarm-demo\nVERSION_ID=1\n');
  fs.writeFileSync(path.join(dir, 'etc/fstab'), '/dev/sda1 / ext4 defaults 0 1\n');
  let left = bytes;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, 256 * 1024 + ((i * 7919) % (768 * 1024)));
    const kind = i % 3;
    const [sub, data] =
      kind === 0
        ? ['usr/bin', prng(`${name}-bin-${i}`, size)]
        : kind === 1
          ? ['usr/share/doc', textish(`${name}-doc-${i}`, size)]
          : ['usr/lib', Buffer.concat([textish(`${name}-lib-${i}`, size >> 1), prng(`${name}-lib2-${i}`, size - (size >> 1))])];
    fs.writeFileSync(path.join(dir, sub, `file-${i}`), data);
    left -= size;
  }
}

async function haveMke2fs(): Promise<boolean> {
  try {
    await run('mke2fs', ['-V']);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds a disk of `sizeMiB` (at least 8) at `out`. About 60% of the
 * partition holds files; the rest is free space (zero chunks, not stored).
 */
export async function buildSyntheticDisk(out: string, sizeMiB: number, opts: { name?: string } = {}): Promise<SyntheticDisk> {
  const size = Math.max(8, Math.floor(sizeMiB)) * MiB;
  const name = opts.name ?? 'demo';
  const work = fs.mkdtempSync(path.join(path.dirname(out), '.disk-'));
  try {
    const root = path.join(work, 'root');
    const partBytes = size - PARTITION_OFFSET;
    populateRoot(root, Math.floor(partBytes * 0.6), name);
    fs.writeFileSync(out, mbr(size));
    fs.truncateSync(out, size);
    if (await haveMke2fs()) {
      await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-U', 'clear', '-E', `offset=${PARTITION_OFFSET},root_owner=0:0`, '-d', root, out, `${partBytes / 1024}k`], {
        env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000', MKE2FS_DETERMINISTIC: '1' },
      });
      return { path: out, sizeBytes: size, filesystem: 'ext4' };
    }
    const fd = fs.openSync(out, 'r+');
    try {
      let at = PARTITION_OFFSET;
      for (const sub of ['usr/bin', 'usr/share/doc', 'usr/lib']) {
        for (const f of fs.readdirSync(path.join(root, sub)).sort()) {
          const data = fs.readFileSync(path.join(root, sub, f));
          fs.writeSync(fd, data, 0, data.length, at);
          at += Math.ceil(data.length / 4096) * 4096;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    return { path: out, sizeBytes: size, filesystem: 'raw' };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
