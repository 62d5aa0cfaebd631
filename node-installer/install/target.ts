/**
 * Finds and mounts the root filesystem an image put on the target, so chrooted
 * `%post` scripts and kexec (bootcfg.ts) can use it. Works for block devices and for image
 * files (loop mounts at each MBR partition's offset). Needs root and util-linux; without them, or
 * when no partition holds a filesystem with `/etc`, the answer is "no root".
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';

const run = promisify(execFile);

export interface MountedRoot {
  /** Where the root filesystem is mounted. */
  root: string;
  /** Unmounts and detaches; idempotent. */
  close(): Promise<void>;
}

async function tryRun(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    return (await run(cmd, args, { timeout: 30_000 })).stdout.trim();
  } catch {
    return undefined;
  }
}

/** Primary partitions of an MBR disk as byte ranges (empty when there is no MBR). */
export function mbrPartitions(first512: Buffer): { offset: number; length: number; type: number }[] {
  if (first512.length < 512 || first512[510] !== 0x55 || first512[511] !== 0xaa) return [];
  const out: { offset: number; length: number; type: number }[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = first512[e + 4]!;
    const lba = first512.readUInt32LE(e + 8);
    const sectors = first512.readUInt32LE(e + 12);
    if (type !== 0 && type !== 0xee && sectors > 0) out.push({ offset: lba * 512, length: sectors * 512, type });
  }
  return out;
}

/** Ways to mount each candidate root filesystem: `[device-or-file, mount options]`. */
async function candidates(target: string): Promise<[string, string[]][]> {
  const st = fs.statSync(target);
  if (st.isFile()) {
    const fd = fs.openSync(target, 'r');
    const head = Buffer.alloc(512);
    try {
      fs.readSync(fd, head, 0, 512, 0);
    } finally {
      fs.closeSync(fd);
    }
    const parts = mbrPartitions(head).map((p): [string, string[]] => [target, ['-o', `loop,offset=${p.offset},sizelimit=${p.length}`]]);
    return [...parts, [target, ['-o', 'loop']]];
  }
  // The image just rewrote the partition table: make the kernel read it again.
  await tryRun('blockdev', ['--rereadpt', target]);
  const listed = await tryRun('lsblk', ['-lnpo', 'NAME,FSTYPE', target]);
  const devs =
    listed === undefined
      ? sysfsPartitions(target).map((d): [string, string[]] => [d, []])
      : listed
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length >= 2 && f[1])
          .map((f): [string, string[]] => [f[0]!, []]);
  return [...devs, [target, []]];
}

/** Partitions of a block device from /sys/class/block (where there is no lsblk, e.g. the boot environment). */
export function sysfsPartitions(device: string, sysBlock = '/sys/class/block'): string[] {
  const name = path.basename(fs.realpathSync(device));
  try {
    return fs
      .readdirSync(path.join(sysBlock, name))
      .filter((e) => e.startsWith(name) && fs.existsSync(path.join(sysBlock, name, e, 'partition')))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .map((e) => path.join(path.dirname(device), e));
  } catch {
    return [];
  }
}

/** Mounts the first partition (or the whole target) whose filesystem has an `/etc`. */
export async function mountTargetRoot(target: string, log: Logger): Promise<MountedRoot | undefined> {
  if (process.getuid?.() !== 0) {
    log.info('not root: the target root filesystem will not be mounted');
    return undefined;
  }
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-root-'));
  for (const [dev, args] of await candidates(target)) {
    if ((await tryRun('mount', [...args, dev, mnt])) === undefined) continue;
    if (fs.existsSync(path.join(mnt, 'etc'))) {
      log.info({ device: dev, root: mnt }, 'mounted the installed root filesystem');
      let closed = false;
      return {
        root: mnt,
        async close() {
          if (closed) return;
          closed = true;
          await tryRun('umount', [mnt]);
          fs.rmSync(mnt, { recursive: true, force: true });
        },
      };
    }
    await tryRun('umount', [mnt]);
  }
  fs.rmSync(mnt, { recursive: true, force: true });
  log.info({ target }, 'no root filesystem found on the target');
  return undefined;
}
