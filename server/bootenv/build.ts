/**
 * `kickswarm bootenv build`: the installer kernel + initrd, the PXELINUX
 * loaders and the iPXE first stages, written into the TFTP root from Debian
 * packages (see debs.ts).
 *
 * The initrd holds: /init (server/bootenv/init.sh), busybox-static and its
 * applets, the Node.js binary running this process with the shared libraries
 * it loads, kickswarm-install bundled into one file, kexec from kexec-tools,
 * and the kernel modules of modules.ts. Everything is copied into a staging
 * folder and archived reproducibly (cpio.ts); a manifest goes next to the initrd.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import { PACKAGE_ROOT } from '../datadir.js';
import { bundleInstaller } from './bundle.js';
import { type Compression, writeInitrd } from './cpio.js';
import { type DebFetcher, type DebInfo, sha256File } from './debs.js';
import { type BootenvManifest, manifestPath } from './manifest.js';
import { DEFAULT_MODULES, copyModules, selectModules } from './modules.js';

const exec = promisify(execFile);

/**
 * PXELINUX loaders and the COM32 modules the shipped configs and common menus
 * use; the iPXE first stages (package `ipxe`: BIOS via the NIC's UNDI, UEFI
 * with iPXE's own drivers or the firmware's SNP); syslinux.efi (package
 * `syslinux-efi`) with the ldlinux.e64 it loads next to it.
 */
export const LOADERS = {
  pxelinux: ['pxelinux.0', 'lpxelinux.0'],
  syslinux: ['ldlinux.c32', 'libcom32.c32', 'libutil.c32', 'menu.c32', 'vesamenu.c32', 'chain.c32', 'reboot.c32'],
  ipxe: ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'],
  syslinuxEfi: { 'syslinux.efi': 'usr/lib/SYSLINUX.EFI/efi64/syslinux.efi' } as Record<string, string>,
  syslinuxEfiModules: ['ldlinux.e64'],
};

export interface BuildOptions {
  /** The TFTP root to write into. */
  out: string;
  /** Paths relative to `out` (config pxe.kernel / pxe.initrd). */
  kernelPath: string;
  initrdPath: string;
  debs: DebFetcher;
  /** A kernel the site already has, with its module folder (`/lib/modules/<version>`). */
  kernel?: { file: string; modules: string };
  modulesExtra: string[];
  compression: Compression;
  /** Scratch space for the staging folder. */
  workDir: string;
  /** One line per step. */
  progress: (line: string) => void;
  /** The Node.js binary to put in (default: the one running this process). */
  nodeBinary?: string;
}

/** The shared libraries (and dynamic loader) `ldd` says a binary needs. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = (await exec('ldd', [binary])).stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string };
    if (err.code === 'ENOENT') throw new UnavailableError('ldd not found: apt-get install libc-bin');
    if (/not a dynamic executable/.test(`${err.stdout ?? ''}${err.message}`)) return [];
    throw new UnavailableError(`ldd ${binary}: ${err.message}`);
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    if (/=>\s*not found/.test(line)) throw new UnavailableError(`${binary} needs ${line.trim().split(/\s/)[0]}, which is not installed on this machine`);
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs.sort();
}

function copyInto(root: string, dest: string, src: string, mode?: number): void {
  const target = path.join(root, dest);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(fs.realpathSync(src), target);
  if (mode !== undefined) fs.chmodSync(target, mode);
}

async function copyBinary(root: string, dest: string, src: string): Promise<void> {
  copyInto(root, dest, src, 0o755);
  for (const lib of await sharedLibraries(src)) if (!fs.existsSync(path.join(root, lib))) copyInto(root, lib, lib);
}

function findOne(dir: string, re: RegExp, what: string): string {
  const hit = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => re.test(f))
        .sort()
        .at(-1)
    : undefined;
  if (!hit) throw new UnavailableError(`${what} not found in ${dir}`);
  return path.join(dir, hit);
}

export interface BuildResult {
  manifest: BootenvManifest;
  manifestFile: string;
}

export async function buildBootenv(o: BuildOptions): Promise<BuildResult> {
  for (const p of [o.kernelPath, o.initrdPath]) {
    if (path.isAbsolute(p) || p.split('/').includes('..')) throw new InvalidInputError(`pxe path ${p} must be relative to the TFTP root`);
  }
  const packages: DebInfo[] = [];
  const pkg = async (name: string): Promise<string> => {
    o.progress(`package ${name}`);
    const d = await o.debs.get(name);
    packages.push(d);
    o.progress(`  ${d.package} ${d.version} (${path.basename(d.file)})`);
    return o.debs.unpack(d);
  };

  // Kernel and its modules.
  let kernelFile: string;
  let modDir: string;
  let kernelSource: string;
  if (o.kernel) {
    kernelFile = o.kernel.file;
    modDir = path.resolve(o.kernel.modules);
    kernelSource = kernelFile;
    if (!fs.existsSync(kernelFile)) throw new InvalidInputError(`--kernel ${kernelFile} does not exist`);
    if (!fs.existsSync(path.join(modDir, 'kernel'))) throw new InvalidInputError(`--modules ${modDir} is not a /lib/modules/<version> folder`);
  } else {
    const name = await o.debs.kernelPackage();
    const dir = await pkg(name);
    kernelFile = findOne(path.join(dir, 'boot'), /^vmlinuz-/, 'kernel vmlinuz-*');
    modDir = findOne(path.join(dir, 'lib', 'modules'), /./, 'module folder');
    kernelSource = `${name} ${packages.at(-1)!.version}`;
  }
  const kernelVersion = path.basename(modDir);

  const busyboxDir = await pkg('busybox-static');
  const busybox = path.join(busyboxDir, 'bin', 'busybox');
  const kexecDir = await pkg('kexec-tools');
  const pxelinuxDir = await pkg('pxelinux');
  const syslinuxDir = await pkg('syslinux-common');
  const ipxeDir = await pkg('ipxe');
  const syslinuxEfiDir = await pkg('syslinux-efi');

  const stage = path.join(o.workDir, `staging-${process.pid}`);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  try {
    o.progress('initrd: busybox, init');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'mnt', 'lib', 'lib64']) fs.mkdirSync(path.join(stage, d), { recursive: true });
    copyInto(stage, 'bin/busybox', busybox, 0o755);
    const applets = (await exec(busybox, ['--list-full'])).stdout.split('\n').filter((l) => l && l !== 'bin/busybox' && !l.includes('..'));
    for (const a of applets) {
      fs.mkdirSync(path.dirname(path.join(stage, a)), { recursive: true });
      if (!fs.existsSync(path.join(stage, a))) fs.symlinkSync('/bin/busybox', path.join(stage, a));
    }
    copyInto(stage, 'init', path.join(PACKAGE_ROOT, 'server', 'bootenv', 'init.sh'), 0o755);
    fs.writeFileSync(path.join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    fs.writeFileSync(path.join(stage, 'etc/group'), 'root:x:0:\n');
    fs.writeFileSync(path.join(stage, 'etc/hosts'), '127.0.0.1 localhost\n');

    o.progress('initrd: Node.js runtime and kickswarm-install');
    const nodeBin = o.nodeBinary ?? process.execPath;
    for (const f of ['usr/bin/node']) fs.rmSync(path.join(stage, f), { force: true });
    await copyBinary(stage, 'usr/bin/node', nodeBin);
    const bundle = path.join(stage, 'usr/lib/kickswarm/kickswarm-install.mjs');
    fs.mkdirSync(path.dirname(bundle), { recursive: true });
    const bundleSize = (await bundleInstaller(bundle)).bytes;
    fs.rmSync(path.join(stage, 'usr/bin/kickswarm-install'), { force: true });
    fs.writeFileSync(path.join(stage, 'usr/bin/kickswarm-install'), '#!/bin/sh\nexec /usr/bin/node /usr/lib/kickswarm/kickswarm-install.mjs "$@"\n', { mode: 0o755 });

    o.progress('initrd: kexec');
    fs.rmSync(path.join(stage, 'sbin/kexec'), { force: true });
    await copyBinary(stage, 'sbin/kexec', path.join(kexecDir, 'sbin', 'kexec'));

    o.progress(`initrd: kernel modules for ${kernelVersion}`);
    const sel = selectModules(modDir, DEFAULT_MODULES, o.modulesExtra);
    copyModules(modDir, sel, stage, kernelVersion);
    await exec(busybox, ['depmod', '-b', stage, kernelVersion]);
    const kickswarmVersion = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    fs.writeFileSync(path.join(stage, 'etc/kickswarm-bootenv'), `kickswarm ${kickswarmVersion}, Node.js ${process.version}\n`);

    o.progress(`initrd: archiving (cpio, ${o.compression})`);
    const initrdOut = path.join(o.out, o.initrdPath);
    fs.mkdirSync(path.dirname(initrdOut), { recursive: true });
    await writeInitrd(stage, initrdOut, o.compression);

    o.progress('TFTP root: kernel and loaders');
    const kernelOut = path.join(o.out, o.kernelPath);
    fs.mkdirSync(path.dirname(kernelOut), { recursive: true });
    fs.copyFileSync(fs.realpathSync(kernelFile), kernelOut);
    const written = [o.kernelPath, o.initrdPath];
    for (const l of LOADERS.pxelinux) {
      fs.copyFileSync(path.join(pxelinuxDir, 'usr/lib/PXELINUX', l), path.join(o.out, l));
      written.push(l);
    }
    for (const l of LOADERS.syslinux) {
      fs.copyFileSync(path.join(syslinuxDir, 'usr/lib/syslinux/modules/bios', l), path.join(o.out, l));
      written.push(l);
    }
    for (const l of LOADERS.ipxe) {
      fs.copyFileSync(path.join(ipxeDir, 'usr/lib/ipxe', l), path.join(o.out, l));
      written.push(l);
    }
    for (const [l, from] of Object.entries(LOADERS.syslinuxEfi)) {
      fs.copyFileSync(path.join(syslinuxEfiDir, from), path.join(o.out, l));
      written.push(l);
    }
    for (const l of LOADERS.syslinuxEfiModules) {
      fs.copyFileSync(path.join(syslinuxDir, 'usr/lib/syslinux/modules/efi64', l), path.join(o.out, l));
      written.push(l);
    }

    const manifest: BootenvManifest = {
      format: 1,
      kickswarmVersion,
      kernel: { version: kernelVersion, source: kernelSource },
      node: { version: process.version, binary: nodeBin, sha256: sha256File(nodeBin) },
      installer: { bundle: 'usr/lib/kickswarm/kickswarm-install.mjs', size: bundleSize, sha256: sha256File(bundle) },
      compression: o.compression,
      modules: { count: sel.files.length, extra: o.modulesExtra, missing: sel.missing },
      packages: packages.map(({ file: _file, ...rest }) => rest),
      files: written.map((p) => ({ path: p, size: fs.statSync(path.join(o.out, p)).size, sha256: sha256File(path.join(o.out, p)) })),
    };
    const manifestFile = manifestPath(o.out, o.initrdPath);
    fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    return { manifest, manifestFile };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
