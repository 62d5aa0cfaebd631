/**
 * Finds and mounts the root filesystem an image put on the target, so chrooted
 * `%post` scripts and kexec can use it. Works for block devices and for image
 * files (through a loop device). Needs root and util-linux; without them, or
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

/** Mounts the first partition (or the whole target) whose filesystem has an `/etc`. */
export async function mountTargetRoot(target: string, log: Logger): Promise<MountedRoot | undefined> {
  if (process.getuid?.() !== 0) {
    log.info('not root: the target root filesystem will not be mounted');
    return undefined;
  }
  const st = fs.statSync(target);
  let device = target;
  let loop: string | undefined;
  if (st.isFile()) {
    loop = await tryRun('losetup', ['--find', '--show', '--partscan', target]);
    if (!loop) {
      log.warn({ target }, 'losetup failed: the target root filesystem will not be mounted');
      return undefined;
    }
    device = loop;
  }
  await tryRun('udevadm', ['settle', '--timeout=5']);
  const listed = (await tryRun('lsblk', ['-lnpo', 'NAME,FSTYPE', device])) ?? '';
  const candidates = listed
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[1])
    .map((f) => f[0]!);
  if (candidates.length === 0) candidates.push(...(fs.readdirSync('/dev').filter((n) => loop && n.startsWith(path.basename(loop) + 'p')).map((n) => `/dev/${n}`)));
  candidates.push(device);
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-root-'));
  for (const dev of candidates) {
    if ((await tryRun('mount', [dev, mnt])) === undefined) continue;
    if (fs.existsSync(path.join(mnt, 'etc'))) {
      log.info({ device: dev, root: mnt }, 'mounted the installed root filesystem');
      let closed = false;
      return {
        root: mnt,
        async close() {
          if (closed) return;
          closed = true;
          await tryRun('umount', [mnt]);
          if (loop) await tryRun('losetup', ['-d', loop]);
          fs.rmSync(mnt, { recursive: true, force: true });
        },
      };
    }
    await tryRun('umount', [mnt]);
  }
  fs.rmSync(mnt, { recursive: true, force: true });
  if (loop) await tryRun('losetup', ['-d', loop]);
  log.info({ target }, 'no root filesystem found on the target');
  return undefined;
}

/** The newest kernel and its initrd under `<root>/boot`, for kexec. */
export function findKernel(root: string): { kernel: string; initrd?: string } | undefined {
  const boot = path.join(root, 'boot');
  if (!fs.existsSync(boot)) return undefined;
  const kernels = fs.readdirSync(boot).filter((f) => /^vmlinuz-/.test(f)).sort();
  const k = kernels.at(-1);
  if (!k) return undefined;
  const ver = k.slice('vmlinuz-'.length);
  const initrd = ['initrd.img-', 'initramfs-'].map((p) => path.join(boot, `${p}${ver}${p === 'initramfs-' ? '.img' : ''}`)).find((f) => fs.existsSync(f));
  return { kernel: path.join(boot, k), initrd };
}
