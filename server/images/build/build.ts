/**
 * `image build`: a root file system (a tarball or a directory) -> a
 * partitioned, bootable raw disk image (layout.ts). Runs as root: each
 * partition is a loop device over its byte range of the image file
 * (`losetup -f --show --offset --sizelimit`, so no partition scanning is
 * needed), made into a file system, mounted and filled. Every mount and loop
 * device is undone on success, failure and abort; the result is written under
 * a temporary name and renamed into place only when complete.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidInputError, UnavailableError } from '../../../protocol/errors.js';
import { extlinuxConf, findKernel, fromRootfsOrHost, fstab, fstabIsEmpty, kernelCmdline, resolveInside, systemdBootFiles } from './boot-files.js';
import { type DiskPlan, type Firmware, type PlannedPartition, type RootFs, defaultSize, partitionBytes, planDisk, SECTOR } from './layout.js';
import { findTool, requireTools, run, type Tool, TOOLS } from './tools.js';

export interface BuildOptions {
  source: { tar: string } | { dir: string };
  /** The raw disk image to write (replaced only on success). */
  output: string;
  sizeBytes?: number;
  fs: RootFs;
  firmware: Firmware;
  /** Extra kernel command line words. */
  append?: string;
  /** Title of the boot entry. */
  title: string;
  /** One line per step. */
  onStep?: (line: string) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  plan: DiskPlan;
  kernel: string;
  loaders: string[];
}

const SYSTEMD_BOOT = TOOLS.systemdBoot.what;
const GPTMBR = TOOLS.gptmbr.what;

function neededTools(o: BuildOptions, compression: Compression): Tool[] {
  const t: Tool[] = [TOOLS.sgdisk, TOOLS.losetup, TOOLS.mount, TOOLS.umount];
  if ('tar' in o.source) t.push(TOOLS.tar);
  if (compression === 'zstd') t.push(TOOLS.zstd);
  if (o.fs === 'ext4' || o.firmware !== 'uefi') t.push(TOOLS.mke2fs);
  if (o.fs === 'xfs') t.push(TOOLS.mkfsXfs);
  if (o.firmware !== 'bios') t.push(TOOLS.mkfsVfat, TOOLS.mcopy, TOOLS.mmd);
  if (o.firmware !== 'uefi') t.push(TOOLS.extlinux);
  return t;
}

type Compression = 'none' | 'gzip' | 'xz' | 'zstd' | 'bzip2';

function compressionOf(file: string): Compression {
  const b = Buffer.alloc(6);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, b, 0, 6, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/**
 * Bytes the files of a tarball take (sizes rounded up to 4 KiB, plus 256
 * bytes per entry); InvalidInputError for a bad tarball or one without a kernel.
 */
async function tarContentBytes(file: string, signal?: AbortSignal): Promise<number> {
  let listing: string;
  try {
    listing = (await run('tar', ['-tv', '--numeric-owner', '-f', file], { what: 'reading the tarball', signal })).stdout;
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new InvalidInputError(`${file} is not a readable tar archive (${(err as Error).message.replace(/^reading the tarball failed: /, '')})`);
  }
  let bytes = 0;
  let entries = 0;
  let kernel = false;
  for (const line of listing.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    entries++;
    if (/(^|\s)(\.\/|\/)?boot\/vmlinuz-\S+$/.test(line)) kernel = true;
    const size = Number(f[2]);
    if (Number.isFinite(size)) bytes += Math.ceil(size / 4096) * 4096;
  }
  if (entries === 0) throw new InvalidInputError(`${file} is an empty tar archive`);
  if (!kernel) findKernel('/nonexistent');
  return bytes + entries * 256;
}

async function dirContentBytes(dir: string, signal?: AbortSignal): Promise<number> {
  findKernel(dir);
  const out = (await run('du', ['-s', '-B1', '-x', dir], { what: 'measuring the directory', signal })).stdout;
  return Number(out.trim().split(/\s+/)[0]) || 0;
}

function checkSource(o: BuildOptions): void {
  const p = 'tar' in o.source ? o.source.tar : o.source.dir;
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new InvalidInputError(`no such ${'tar' in o.source ? 'file' : 'directory'}: ${p}`);
  }
  if ('tar' in o.source && !st.isFile()) throw new InvalidInputError(`${p} is not a file (want a rootfs tarball)`);
  if ('dir' in o.source && !st.isDirectory()) throw new InvalidInputError(`${p} is not a directory`);
}

/** Mounts and loop devices to undo, newest first. */
class Undo {
  private readonly steps: { what: string; fn: () => Promise<unknown> }[] = [];
  push(what: string, fn: () => Promise<unknown>): void {
    this.steps.push({ what, fn });
  }
  /** Runs every step; returns the ones that failed. */
  async all(): Promise<string[]> {
    const failed: string[] = [];
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.fn();
      } catch (e) {
        failed.push(`${s.what}: ${(e as Error).message}`);
      }
    }
    return failed;
  }
}

async function umount(mnt: string): Promise<void> {
  try {
    await run('umount', [mnt], { what: `umount ${mnt}` });
  } catch {
    // busy (e.g. a scanner looking at it): detach lazily so nothing stays mounted
    await run('umount', ['-l', mnt], { what: `umount -l ${mnt}` });
  }
}

async function mkfs(p: PlannedPartition, dev: string, signal?: AbortSignal): Promise<void> {
  if (p.fs === 'vfat') await run('mkfs.vfat', ['-F', '16', '-i', p.fsUuid, '-n', 'ESP', dev], { what: 'mkfs.vfat', signal });
  else if (p.fs === 'ext4') await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', '^64bit', '-U', p.fsUuid, '-L', p.role, dev], { what: 'mke2fs', signal });
  else await run('mkfs.xfs', ['-q', '-f', '-m', `uuid=${p.fsUuid}`, '-L', p.role, dev], { what: 'mkfs.xfs', signal });
}

/** Builds the disk image at `o.output`. */
export async function buildDiskImage(o: BuildOptions): Promise<BuildResult> {
  const step = o.onStep ?? (() => {});
  const signal = o.signal;
  if (process.getuid?.() !== 0) throw new UnavailableError('image build needs root (it attaches loop devices and mounts file systems): run it as root or with sudo');
  checkSource(o);
  const compression = 'tar' in o.source ? compressionOf(o.source.tar) : 'none';
  requireTools(neededTools(o, compression));
  if (o.firmware !== 'bios' && !findTool(TOOLS.systemdBoot) && 'dir' in o.source && !resolveInside(o.source.dir, SYSTEMD_BOOT)) requireTools([TOOLS.systemdBoot]);
  if (o.firmware !== 'uefi' && !findTool(TOOLS.gptmbr) && 'dir' in o.source && !resolveInside(o.source.dir, GPTMBR)) requireTools([TOOLS.gptmbr]);

  step(`measuring the rootfs (${'tar' in o.source ? `tarball ${o.source.tar}${compression !== 'none' ? `, ${compression}` : ''}` : `directory ${o.source.dir}`})`);
  const content = 'tar' in o.source ? await tarContentBytes(o.source.tar, signal) : await dirContentBytes(o.source.dir, signal);
  const sizeBytes = o.sizeBytes ?? defaultSize(content, o.firmware, o.fs);
  const plan = planDisk({ sizeBytes, firmware: o.firmware, fs: o.fs, contentBytes: content, uuid: () => crypto.randomUUID(), volumeId: () => crypto.randomBytes(4).toString('hex') });
  const describe = plan.partitions.map((p) => `${p.number}:${p.role} ${p.fs} ${Math.round(partitionBytes(p) / 1048576)} MiB`).join(', ');
  step(`partitioning ${Math.round(sizeBytes / 1048576)} MiB, GPT for ${o.firmware}: ${describe}`);

  fs.mkdirSync(path.dirname(path.resolve(o.output)), { recursive: true });
  const tmp = `${o.output}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-build-'));
  const undo = new Undo();
  let ok = false;
  try {
    fs.writeFileSync(tmp, '');
    fs.truncateSync(tmp, sizeBytes);
    const sg = ['--clear'];
    for (const p of plan.partitions) {
      sg.push(`--new=${p.number}:${p.start}:${p.end}`, `--typecode=${p.number}:${p.type}`, `--change-name=${p.number}:${p.label}`, `--partition-guid=${p.number}:${p.partUuid}`);
      if (p.legacyBoot) sg.push(`--attributes=${p.number}:set:2`);
    }
    await run('sgdisk', [...sg, tmp], { what: 'sgdisk', signal });

    const devs = new Map<number, string>();
    for (const p of plan.partitions) {
      const dev = (await run('losetup', ['-f', '--show', '--offset', String(p.start * SECTOR), '--sizelimit', String(partitionBytes(p)), tmp], { what: 'losetup', signal })).stdout.trim();
      undo.push(`losetup -d ${dev}`, () => run('losetup', ['-d', dev]));
      devs.set(p.number, dev);
    }
    step(`making file systems (${plan.partitions.map((p) => `${p.fs} on ${devs.get(p.number)}`).join(', ')})`);
    for (const p of plan.partitions) await mkfs(p, devs.get(p.number)!, signal);

    const byRole = (r: PlannedPartition['role']) => plan.partitions.find((p) => p.role === r);
    const mountAt = async (p: PlannedPartition, dir: string) => {
      fs.mkdirSync(dir, { recursive: true });
      await run('mount', [devs.get(p.number)!, dir], { what: `mount ${p.role}`, signal });
      undo.push(`umount ${dir}`, () => umount(dir));
    };
    await mountAt(byRole('root')!, mnt);
    const bootPart = byRole('boot');
    if (bootPart) await mountAt(bootPart, path.join(mnt, 'boot'));

    if ('tar' in o.source) {
      step(`unpacking ${o.source.tar}`);
      try {
        await run('tar', ['-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-f', o.source.tar, '-C', mnt], { what: 'tar', signal });
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new InvalidInputError(`unpacking ${o.source.tar} failed: ${(err as Error).message.replace(/^tar failed: /, '')}`);
      }
    } else {
      step(`copying ${o.source.dir}`);
      await run('cp', ['-a', '--sparse=always', `${o.source.dir.replace(/\/+$/, '')}/.`, `${mnt}/`], { what: 'copying the directory', signal });
    }
    signal?.throwIfAborted();
    const esp = byRole('esp');
    const kernel = findKernel(mnt);
    const cmdline = kernelCmdline(plan, o.append);
    const fstabPath = path.join(mnt, 'etc', 'fstab');
    const oldFstab = fs.existsSync(fstabPath) && !fs.lstatSync(fstabPath).isSymbolicLink() ? fs.readFileSync(fstabPath, 'utf8') : undefined;
    if (fstabIsEmpty(oldFstab)) {
      fs.mkdirSync(path.dirname(fstabPath), { recursive: true });
      fs.rmSync(fstabPath, { force: true });
      fs.writeFileSync(fstabPath, fstab(plan));
    } else step("keeping the rootfs's own /etc/fstab (it has entries)");

    const loaders: string[] = [];
    if (esp) {
      // The ESP is filled with mtools, not mounted: no vfat driver is needed on the build host.
      const sdboot = fromRootfsOrHost(mnt, SYSTEMD_BOOT);
      if (!sdboot) requireTools([TOOLS.systemdBoot]);
      const dev = devs.get(esp.number)!;
      const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-esp-'));
      try {
        await run('mmd', ['-i', dev, '::/EFI', '::/EFI/BOOT', '::/EFI/systemd', '::/loader', '::/loader/entries'], { what: 'mmd', signal });
        const put = (src: string, dst: string) => run('mcopy', ['-o', '-i', dev, src, `::/${dst}`], { what: `mcopy ${dst}`, signal });
        await put(sdboot!.path, 'EFI/BOOT/BOOTX64.EFI');
        await put(sdboot!.path, 'EFI/systemd/systemd-bootx64.efi');
        for (const [f, text] of Object.entries(systemdBootFiles(kernel, cmdline, o.title))) {
          const local = path.join(staging, path.basename(f));
          fs.writeFileSync(local, text);
          await put(local, f);
        }
        for (const f of [kernel.kernel, kernel.initrd]) if (f) await put(resolveInside(mnt, f)!, path.basename(f));
      } finally {
        fs.rmSync(staging, { recursive: true, force: true });
      }
      fs.mkdirSync(path.join(mnt, 'boot', 'efi'), { recursive: true });
      loaders.push(`uefi: systemd-boot from the ${sdboot!.from === 'rootfs' ? 'rootfs' : 'host (systemd-boot-efi)'}`);
    }
    if (o.firmware !== 'uefi') {
      const dir = path.join(mnt, 'boot', 'extlinux');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'extlinux.conf'), extlinuxConf(kernel, cmdline, bootPart ? '' : '/boot', o.title));
      await run('extlinux', ['--install', dir], { what: 'extlinux --install', signal });
      const mbr = fromRootfsOrHost(mnt, GPTMBR);
      if (!mbr) requireTools([TOOLS.gptmbr]);
      const code = fs.readFileSync(mbr!.path).subarray(0, 440);
      const fd = fs.openSync(tmp, 'r+');
      try {
        fs.writeSync(fd, code, 0, code.length, 0);
      } finally {
        fs.closeSync(fd);
      }
      loaders.push(`bios: extlinux (host) + gptmbr.bin from the ${mbr!.from === 'rootfs' ? 'rootfs' : 'host (syslinux-common)'}`);
    }
    step(`boot: kernel ${kernel.version}${kernel.initrd ? ' with initrd' : ', no initrd'}; ${loaders.join('; ')}; cmdline: ${cmdline}`);
    await run('sync', [], { what: 'sync' });
    const failed = await undo.all();
    if (failed.length) throw new Error(`could not clean up: ${failed.join('; ')}`);
    fs.renameSync(tmp, o.output);
    ok = true;
    return { plan, kernel: kernel.version, loaders };
  } finally {
    const failed = await undo.all();
    try {
      fs.rmdirSync(mnt);
    } catch {
      // still mounted (reported below) or already gone
    }
    if (!ok) fs.rmSync(tmp, { force: true });
    if (failed.length) step(`warning: cleanup left something behind: ${failed.join('; ')}`);
  }
}
