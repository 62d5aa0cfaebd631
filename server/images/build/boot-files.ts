/**
 * What `image build` writes for booting (pure text), and how it finds the
 * rootfs's kernel and initrd and its own boot loader files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '../../../protocol/errors.js';
import type { DiskPlan, PlannedPartition } from './layout.js';

export interface KernelFiles {
  version: string;
  /** Paths relative to the rootfs root, e.g. `boot/vmlinuz-6.1.0-18-amd64`. */
  kernel: string;
  initrd?: string;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isFinite(nx) && Number.isFinite(ny) && x !== '' && y !== '' ? nx - ny : x.localeCompare(y);
    if (c) return c;
  }
  return 0;
}

/**
 * The real path of `rel` inside the tree at `root`, when it is a regular file
 * there; undefined when absent or when a symlink leads out of the tree (an
 * absolute link in a rootfs means the rootfs, never the build host).
 */
export function resolveInside(root: string, rel: string): string | undefined {
  let real: string;
  try {
    real = fs.realpathSync(path.join(root, rel));
  } catch {
    return undefined;
  }
  const top = fs.realpathSync(root);
  if (real !== top && !real.startsWith(top + path.sep)) return undefined;
  return fs.statSync(real).isFile() ? real : undefined;
}

/** The newest `boot/vmlinuz-*` of the tree at `root` and its `boot/initrd.img-*`; InvalidInputError when there is none. */
export function findKernel(root: string): KernelFiles {
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(root, 'boot'));
  } catch {
    // no /boot
  }
  const versions = names
    .filter((n) => n.startsWith('vmlinuz-') && resolveInside(root, `boot/${n}`) !== undefined)
    .map((n) => n.slice('vmlinuz-'.length))
    .sort(compareVersions);
  const version = versions.at(-1);
  if (!version) {
    throw new InvalidInputError('the rootfs has no kernel (/boot/vmlinuz-*): install one in it first (Debian: linux-image-amd64, with initramfs-tools)');
  }
  const initrd = ['initrd.img-', 'initramfs-'].map((p) => `boot/${p}${version}${p === 'initramfs-' ? '.img' : ''}`).find((p) => resolveInside(root, p) !== undefined);
  return { version, kernel: `boot/vmlinuz-${version}`, ...(initrd ? { initrd } : {}) };
}

/** The kernel command line: root by PARTUUID (the kernel resolves it with or without an initramfs), serial and VGA consoles. */
export function kernelCmdline(plan: DiskPlan, extra = ''): string {
  const root = plan.partitions.find((p) => p.role === 'root')!;
  return [`root=PARTUUID=${root.partUuid}`, `rootfstype=${root.fs}`, 'rw', 'console=tty0', 'console=ttyS0,115200', extra.trim()].filter(Boolean).join(' ');
}

/** extlinux.conf; `prefix` is where the kernel lives as seen from the extlinux partition's root (`/boot` or ``). */
export function extlinuxConf(k: KernelFiles, cmdline: string, prefix: string, title: string): string {
  const base = (p: string) => `${prefix}/${path.basename(p)}`;
  return [
    '# Written by kickswarm image build.',
    'SERIAL 0 115200',
    'DEFAULT kickswarm',
    'PROMPT 0',
    'TIMEOUT 10',
    `LABEL kickswarm`,
    `  MENU LABEL ${title}`,
    `  LINUX ${base(k.kernel)}`,
    ...(k.initrd ? [`  INITRD ${base(k.initrd)}`] : []),
    `  APPEND ${cmdline}`,
    '',
  ].join('\n');
}

/** systemd-boot's loader.conf and the one entry (kernel and initrd copied to the ESP's root). */
export function systemdBootFiles(k: KernelFiles, cmdline: string, title: string): Record<string, string> {
  return {
    'loader/loader.conf': 'default kickswarm.conf\ntimeout 0\nconsole-mode keep\n',
    'loader/entries/kickswarm.conf': [`title ${title}`, `linux /${path.basename(k.kernel)}`, ...(k.initrd ? [`initrd /${path.basename(k.initrd)}`] : []), `options ${cmdline}`, ''].join('\n'),
  };
}

/** /etc/fstab for the planned partitions. */
export function fstab(plan: DiskPlan): string {
  const line = (p: PlannedPartition) => {
    const src = p.fs === 'vfat' ? `UUID=${p.fsUuid.slice(0, 4).toUpperCase()}-${p.fsUuid.slice(4).toUpperCase()}` : `UUID=${p.fsUuid}`;
    const opts = p.fs === 'vfat' ? 'umask=0077' : 'defaults';
    return `${src}\t${p.mountPoint}\t${p.fs}\t${opts}\t0\t${p.mountPoint === '/' ? 1 : 2}`;
  };
  const order = [...plan.partitions].sort((a, b) => a.mountPoint.length - b.mountPoint.length);
  return ['# Written by kickswarm image build.', ...order.map(line), ''].join('\n');
}

/** True when an fstab has no entries (absent, empty, or comments only, as debootstrap and container exports leave it). */
export function fstabIsEmpty(text: string | undefined): boolean {
  return !text || text.split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'));
}

/**
 * A boot loader file from the rootfs's own packages when present there (the
 * same path under `root`), else the host's; undefined when neither has it.
 */
export function fromRootfsOrHost(root: string, hostPath: string): { path: string; from: 'rootfs' | 'host' } | undefined {
  const inRoot = resolveInside(root, hostPath);
  if (inRoot) return { path: inRoot, from: 'rootfs' };
  if (fs.existsSync(hostPath)) return { path: hostPath, from: 'host' };
  return undefined;
}
