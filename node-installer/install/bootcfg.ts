/**
 * What the installed system's own boot loader would boot: kernel, initrd and
 * command line of the default entry of its extlinux/syslinux config or
 * grub.cfg, so kexec starts the installed system exactly as a firmware reboot
 * would (its `root=`, not the installer's `ks=...` line). Without a loader
 * config: the newest `/boot/vmlinuz-*` and `root=` from the installed fstab.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface BootEntry {
  kernel: string;
  initrd?: string;
  cmdline: string;
  /** Where the entry came from (a config file, or `fstab`). */
  from: string;
}

const EXTLINUX = ['boot/extlinux/extlinux.conf', 'extlinux/extlinux.conf', 'boot/syslinux/syslinux.cfg', 'syslinux/syslinux.cfg', 'extlinux.conf', 'boot/extlinux.conf'];
const GRUB = ['boot/grub/grub.cfg', 'boot/grub2/grub.cfg'];

/** A path from a loader config, inside the installed root (absolute, relative to the config, or relative to /boot on a separate /boot). */
function resolveIn(root: string, cfgDir: string, p: string): string | undefined {
  const tries = p.startsWith('/') ? [path.join(root, p), path.join(root, 'boot', p)] : [path.join(cfgDir, p), path.join(root, p), path.join(root, 'boot', p)];
  return tries.find((f) => {
    try {
      return fs.statSync(f).isFile() && !path.relative(root, fs.realpathSync(f)).startsWith('..');
    } catch {
      return false;
    }
  });
}

/** Parses an extlinux/syslinux config: the DEFAULT label (or the first one). */
export function parseExtlinux(text: string): { kernel?: string; initrd?: string; append: string } | undefined {
  const labels: { name: string; kernel?: string; initrd?: string; append: string }[] = [];
  let def: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const key = m[1]!.toLowerCase();
    const val = m[2]!.trim();
    if (key === 'default') def = val.split(/\s+/)[0];
    else if (key === 'label') labels.push({ name: val, append: '' });
    else if (labels.length) {
      const cur = labels.at(-1)!;
      if (key === 'kernel' || key === 'linux') cur.kernel = val.split(/\s+/)[0];
      else if (key === 'initrd') cur.initrd = val.split(/[\s,]+/)[0];
      else if (key === 'append') cur.append = val;
    }
  }
  const pick = labels.find((l) => l.name === def) ?? labels.find((l) => l.kernel);
  if (!pick?.kernel) return undefined;
  let append = pick.append;
  let initrd = pick.initrd;
  const inAppend = /(?:^|\s)initrd=(\S+)/.exec(append);
  if (inAppend) {
    initrd ??= inAppend[1]!.split(',')[0];
    append = append.replace(/(?:^|\s)initrd=\S+/, '').trim();
  }
  return { kernel: pick.kernel, initrd, append };
}

/** Parses grub.cfg: the first menuentry's `linux` and `initrd` lines. */
export function parseGrub(text: string): { kernel?: string; initrd?: string; append: string } | undefined {
  const start = text.search(/^\s*menuentry\s/m);
  if (start < 0) return undefined;
  const body = text.slice(start);
  const linux = /^\s*linux(?:efi)?\s+(\S+)\s*(.*)$/m.exec(body);
  if (!linux) return undefined;
  const initrd = /^\s*initrd(?:efi)?\s+(\S+)/m.exec(body);
  return { kernel: linux[1], initrd: initrd?.[1], append: linux[2]!.trim() };
}

/** `root=` for the installed `/` from its fstab, if it names one. */
export function rootFromFstab(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 2 && !f[0]!.startsWith('#') && f[1] === '/') return f[0];
  }
  return undefined;
}

/** The entry kexec should boot, or undefined when the installed root has no kernel. */
export function findBootEntry(root: string): BootEntry | undefined {
  for (const rel of [...EXTLINUX, ...GRUB]) {
    const file = path.join(root, rel);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const e = EXTLINUX.includes(rel) ? parseExtlinux(text) : parseGrub(text);
    if (!e?.kernel) continue;
    const kernel = resolveIn(root, path.dirname(file), e.kernel);
    if (!kernel) continue;
    const initrd = e.initrd ? resolveIn(root, path.dirname(file), e.initrd) : undefined;
    return { kernel, initrd, cmdline: e.append, from: rel };
  }
  const boot = path.join(root, 'boot');
  const k = fs.existsSync(boot)
    ? fs
        .readdirSync(boot)
        .filter((f) => /^vmlinuz-/.test(f))
        .sort()
        .at(-1)
    : undefined;
  if (!k) return undefined;
  const ver = k.slice('vmlinuz-'.length);
  const initrd = [`initrd.img-${ver}`, `initramfs-${ver}.img`].map((f) => path.join(boot, f)).find((f) => fs.existsSync(f));
  let fstab = '';
  try {
    fstab = fs.readFileSync(path.join(root, 'etc/fstab'), 'utf8');
  } catch {
    fstab = '';
  }
  const rootDev = rootFromFstab(fstab);
  return { kernel: path.join(boot, k), initrd, cmdline: rootDev ? `root=${rootDev} ro` : '', from: 'fstab' };
}
