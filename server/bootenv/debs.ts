/**
 * Debian packages for the boot environment, never installed on the host:
 * `apt-get download` into a cache folder (the frontend's own apt sources), or
 * the `.deb` files of a folder (`--from-dir`, an offline frontend), unpacked
 * with `dpkg-deb -x` into a cache keyed by the package file's SHA-256.
 *
 * A missing tool or package is an UnavailableError whose message is one line
 * saying what to install or download.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { UnavailableError } from '../../protocol/errors.js';

const exec = promisify(execFile);

/** One package file as it went into the boot environment (a manifest row). */
export interface DebInfo {
  package: string;
  version: string;
  architecture: string;
  file: string;
  sha256: string;
}

export type DebSource = { kind: 'apt'; cacheDir: string } | { kind: 'dir'; dir: string };

async function tool(cmd: string, args: string[], what: string, opts: { cwd?: string } = {}): Promise<string> {
  try {
    return (await exec(cmd, args, { maxBuffer: 64 << 20, cwd: opts.cwd })).stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new UnavailableError(`${cmd} not found: ${what} needs it (apt-get install ${cmd === 'dpkg-deb' ? 'dpkg' : 'apt'})`);
    const detail =
      (err.stderr ?? err.message)
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('W:'))
        .slice(-1)[0] ?? err.message;
    throw new UnavailableError(`${what}: ${detail.trim()}`);
  }
}

export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Package, Version and Architecture of a `.deb` file. */
export async function debFields(file: string): Promise<{ package: string; version: string; architecture: string }> {
  const out = await tool('dpkg-deb', ['-f', file, 'Package', 'Version', 'Architecture'], `reading ${path.basename(file)}`);
  const f: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) f[m[1]!] = m[2]!.trim();
  }
  if (!f.Package || !f.Version) throw new UnavailableError(`${file} is not a Debian package`);
  return { package: f.Package, version: f.Version, architecture: f.Architecture ?? 'all' };
}

async function newer(a: string, b: string): Promise<boolean> {
  try {
    await exec('dpkg', ['--compare-versions', a, 'gt', b]);
    return true;
  } catch {
    return false;
  }
}

/** The `.deb` files of a folder, by package name (the newest version of each). */
async function indexDir(dir: string): Promise<Map<string, { file: string; version: string; architecture: string }>> {
  if (!fs.existsSync(dir)) throw new UnavailableError(`package folder ${dir} does not exist`);
  const out = new Map<string, { file: string; version: string; architecture: string }>();
  for (const name of fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.deb'))
    .sort()) {
    const file = path.join(dir, name);
    const f = await debFields(file);
    const have = out.get(f.package);
    if (!have || (await newer(f.version, have.version))) out.set(f.package, { file, version: f.version, architecture: f.architecture });
  }
  return out;
}

/** Finds, downloads (apt) and describes packages; `unpack` extracts them. */
export class DebFetcher {
  private dirIndex?: Map<string, { file: string; version: string; architecture: string }>;

  constructor(
    private readonly source: DebSource,
    private readonly unpackRoot: string,
  ) {}

  /** The versioned kernel package (`linux-image-<abi>-amd64`) behind `linux-image-amd64`, or the newest one in the folder. */
  async kernelPackage(): Promise<string> {
    if (this.source.kind === 'dir') {
      const idx = await this.index();
      const names = [...idx.keys()].filter((n) => /^linux-image-\d/.test(n) && !n.endsWith('-dbg') && !n.includes('-unsigned'));
      let best: string | undefined;
      for (const n of names) if (!best || (await newer(idx.get(n)!.version, idx.get(best)!.version))) best = n;
      if (!best) throw new UnavailableError(`no linux-image-<version> package in ${this.source.dir} (or give --kernel FILE --modules DIR)`);
      return best;
    }
    const out = await tool('apt-cache', ['depends', 'linux-image-amd64'], 'finding the kernel package of linux-image-amd64');
    const m = /Depends:\s*(linux-image-\S+)/.exec(out);
    if (!m) throw new UnavailableError('apt-cache knows no linux-image-amd64: add a Debian main source and run apt-get update (or give --kernel FILE --modules DIR)');
    return m[1]!;
  }

  /** The package file for `name`: from the folder, or the apt cache (downloaded when the candidate version is not there yet). */
  async get(name: string): Promise<DebInfo> {
    if (this.source.kind === 'dir') {
      const hit = (await this.index()).get(name);
      if (!hit) throw new UnavailableError(`package ${name} is not in ${this.source.dir} (copy its .deb there: apt-get download ${name})`);
      return { package: name, version: hit.version, architecture: hit.architecture, file: hit.file, sha256: sha256File(hit.file) };
    }
    const cache = this.source.cacheDir;
    fs.mkdirSync(cache, { recursive: true });
    const policy = await tool('apt-cache', ['policy', name], `looking up ${name}`);
    const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1];
    if (!candidate || candidate === '(none)') throw new UnavailableError(`apt knows no package ${name}: add a Debian main source and run apt-get update`);
    const cached = await this.findCached(name, candidate);
    if (cached) return cached;
    await tool('apt-get', ['download', '-q', `${name}=${candidate}`], `apt-get download ${name}`, { cwd: cache });
    const got = await this.findCached(name, candidate);
    if (!got) throw new UnavailableError(`apt-get download ${name} left no package file in ${cache}`);
    return got;
  }

  /** Extracts the package (once per package file) and returns the folder holding its files. */
  async unpack(deb: DebInfo): Promise<string> {
    const dir = path.join(this.unpackRoot, `${deb.package}_${deb.sha256.slice(0, 16)}`);
    if (fs.existsSync(path.join(dir, '.unpacked'))) return dir;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    await tool('dpkg-deb', ['-x', deb.file, dir], `unpacking ${path.basename(deb.file)}`);
    fs.writeFileSync(path.join(dir, '.unpacked'), `${deb.package} ${deb.version}\n`);
    return dir;
  }

  private async index() {
    if (this.source.kind !== 'dir') throw new Error('not a folder source');
    this.dirIndex ??= await indexDir(this.source.dir);
    return this.dirIndex;
  }

  private async findCached(name: string, version: string): Promise<DebInfo | undefined> {
    if (this.source.kind !== 'apt') return undefined;
    const dir = this.source.cacheDir;
    for (const f of fs
      .readdirSync(dir)
      .filter((x) => x.startsWith(`${name}_`) && x.endsWith('.deb'))
      .sort()) {
      const file = path.join(dir, f);
      const fields = await debFields(file).catch(() => undefined);
      if (fields?.package === name && fields.version === version) return { ...fields, file, sha256: sha256File(file) };
    }
    return undefined;
  }
}
