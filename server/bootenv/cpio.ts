/**
 * A reproducible initramfs: the files of a folder as a `newc` cpio archive
 * (what the kernel unpacks), entries sorted by path, owner root, fixed mtime,
 * modes 0755/0644, inode numbers counted up, then compressed (gzip in-process, or `zstd`).
 * The same folder gives the same bytes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { UnavailableError } from '../../protocol/errors.js';

export type Compression = 'gzip' | 'zstd';

interface Entry {
  name: string;
  mode: number;
  data?: Buffer | string;
  size: number;
  file?: string;
}

/** Every path below `root` (relative, no leading slash), parents before children, sorted. */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      if (fs.lstatSync(path.join(root, r)).isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function header(e: Entry, ino: number, mtime: number): Buffer {
  const nameBytes = Buffer.byteLength(e.name) + 1;
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
  const fields = [ino, e.mode, 0, 0, e.mode & 0o040000 ? 2 : 1, mtime, e.size, 0, 0, 0, 0, nameBytes, 0];
  const h = `070701${fields.map(hex).join('')}${e.name}\0`;
  const pad = (4 - (Buffer.byteLength(h) % 4)) % 4;
  return Buffer.concat([Buffer.from(h), Buffer.alloc(pad)]);
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

/** Streams the cpio archive of `root`. */
export async function* cpioStream(root: string, mtime = 0): AsyncGenerator<Buffer> {
  let ino = 1;
  for (const rel of listTree(root)) {
    const full = path.join(root, rel);
    const st = fs.lstatSync(full);
    // Modes normalised so the umask of the build does not change the bytes.
    const perm = st.isDirectory() || st.mode & 0o111 ? 0o755 : 0o644;
    let e: Entry;
    if (st.isDirectory()) e = { name: rel, mode: 0o040000 | perm, size: 0 };
    else if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(full);
      e = { name: rel, mode: 0o120000 | 0o777, data: target, size: Buffer.byteLength(target) };
    } else if (st.isFile()) e = { name: rel, mode: 0o100000 | perm, size: st.size, file: full };
    else continue;
    yield header(e, ino++, mtime);
    if (e.data !== undefined) yield Buffer.concat([Buffer.from(e.data), pad4(e.size)]);
    else if (e.file) {
      for await (const chunk of fs.createReadStream(e.file, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
      yield pad4(e.size);
    }
  }
  const trailer: Entry = { name: 'TRAILER!!!', mode: 0, size: 0 };
  yield header(trailer, 0, 0);
}

/** Writes `root` as a compressed cpio archive to `out`; resolves with its size in bytes. */
export async function writeInitrd(root: string, out: string, compression: Compression): Promise<number> {
  const tmp = `${out}.tmp-${process.pid}`;
  const src: Readable = PassThrough.from(cpioStream(root));
  try {
    if (compression === 'gzip') {
      await pipeline(src, zlib.createGzip({ level: 9, memLevel: 9 }), fs.createWriteStream(tmp));
    } else {
      const child = spawn('zstd', ['-q', '-19', '-T2', '--no-progress', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<void>((resolve, reject) => {
        child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new UnavailableError('zstd not found: apt-get install zstd (or use --compress gzip)') : e));
        child.on('close', (code) => (code === 0 ? resolve() : reject(new UnavailableError(`zstd failed: ${stderr.trim()}`))));
      });
      await Promise.all([pipeline(src, child.stdin), pipeline(child.stdout, fs.createWriteStream(tmp)), exited]);
    }
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return fs.statSync(out).size;
}
