/**
 * The kernel modules that go into the initrd: the ones a node needs to reach
 * its network and disks (and mount the installed root for `%post` and kexec),
 * plus `--modules-extra`, with everything they depend on. Dependencies come
 * from the kernel's own `modules.dep` when the module tree has one, else from
 * each module's `depends=` modinfo field (what depmod reads).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';

/** Common NICs and storage controllers, the filesystems images use, and what the installer runs on. */
export const DEFAULT_MODULES: readonly string[] = [
  // network
  'virtio_pci',
  'virtio_net',
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'i40e',
  'ice',
  'mlx4_en',
  'mlx5_core',
  'tg3',
  'bnx2',
  'bnx2x',
  'bnxt_en',
  'r8169',
  'vmxnet3',
  'af_packet',
  // storage
  'virtio_blk',
  'virtio_scsi',
  'ahci',
  'ata_piix',
  'ata_generic',
  'nvme',
  'sd_mod',
  'sr_mod',
  'megaraid_sas',
  'mpt3sas',
  'hpsa',
  'smartpqi',
  'vmw_pvscsi',
  'usb_storage',
  'xhci_pci',
  'ehci_pci',
  'uhci_hcd',
  // filesystems and what they ask for by name (not in modules.dep)
  'ext4',
  'xfs',
  'vfat',
  'nls_cp437',
  'nls_ascii',
  'nls_iso8859_1',
  'crc32c_generic',
  'crc32c_intel',
  'loop',
  // UEFI variables: the installer points BootNext at the installed disk
  'efivarfs',
  'unix',
];

/** `foo-bar.ko[.xz|.zst|.gz]` -> `foo_bar`. */
export function moduleName(file: string): string {
  return path
    .basename(file)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replace(/-/g, '_');
}

function walk(dir: string, rel: string, out: Map<string, string>): void {
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) walk(dir, r, out);
    else if (/\.ko(\.(xz|zst|gz))?$/.test(e.name)) out.set(moduleName(e.name), r);
  }
}

/** `depends=a,b` from a module file's modinfo strings (uncompressed modules only). */
export function modinfoDepends(file: string): string[] {
  const buf = fs.readFileSync(file);
  const key = Buffer.from('\0depends=');
  const i = buf.indexOf(key);
  if (i < 0) return [];
  const start = i + key.length;
  const end = buf.indexOf(0, start);
  const v = buf.subarray(start, end < 0 ? buf.length : end).toString('latin1');
  return v
    ? v
        .split(',')
        .map((s) => s.trim().replace(/-/g, '_'))
        .filter(Boolean)
    : [];
}

export interface ModuleSelection {
  /** Paths relative to the module dir, sorted. */
  files: string[];
  /** Names asked for that this kernel has neither as a module nor built in. */
  missing: string[];
  /** Names asked for that are built into the kernel. */
  builtin: string[];
}

/**
 * Picks `wanted` and their dependencies from `modDir` (`.../lib/modules/<version>`).
 * `strict` names (from --modules-extra) must exist; the default list may name
 * drivers a kernel does not have.
 */
export function selectModules(modDir: string, wanted: readonly string[], strict: readonly string[]): ModuleSelection {
  if (!fs.existsSync(path.join(modDir, 'kernel'))) throw new UnavailableError(`${modDir} has no kernel/ module tree`);
  const byName = new Map<string, string>();
  walk(modDir, 'kernel', byName);
  const builtins = new Set<string>();
  const builtinFile = path.join(modDir, 'modules.builtin');
  if (fs.existsSync(builtinFile)) for (const l of fs.readFileSync(builtinFile, 'utf8').split('\n')) if (l.trim()) builtins.add(moduleName(l.trim()));
  const depFile = path.join(modDir, 'modules.dep');
  const depTable = new Map<string, string[]>();
  if (fs.existsSync(depFile)) {
    for (const line of fs.readFileSync(depFile, 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      depTable.set(
        moduleName(line.slice(0, i)),
        line
          .slice(i + 1)
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(moduleName),
      );
    }
  }
  const deps = (name: string, rel: string): string[] => {
    const d = depTable.get(name);
    if (d) return d;
    if (depTable.size > 0) return [];
    if (!rel.endsWith('.ko')) throw new UnavailableError(`${rel} is compressed and ${modDir} has no modules.dep: run depmod for this kernel first`);
    return modinfoDepends(path.join(modDir, rel));
  };
  const chosen = new Set<string>();
  const missing: string[] = [];
  const builtin: string[] = [];
  const strictSet = new Set(strict.map((s) => s.replace(/-/g, '_')));
  const visit = (raw: string) => {
    const name = raw.replace(/-/g, '_');
    if (chosen.has(name)) return;
    const rel = byName.get(name);
    if (!rel) {
      if (builtins.has(name)) builtin.push(name);
      else if (strictSet.has(name)) throw new InvalidInputError(`--modules-extra ${name}: this kernel has no such module`);
      else missing.push(name);
      return;
    }
    chosen.add(name);
    for (const d of deps(name, rel)) visit(d);
  };
  for (const w of [...wanted, ...strict]) visit(w);
  return { files: [...chosen].map((n) => byName.get(n)!).sort(), missing: missing.sort(), builtin: builtin.sort() };
}

/** Copies the selection (and the kernel's builtin lists) into `<root>/lib/modules/<version>/`. */
export function copyModules(modDir: string, sel: ModuleSelection, root: string, version: string): void {
  const dest = path.join(root, 'lib', 'modules', version);
  for (const rel of sel.files) {
    fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
    fs.copyFileSync(path.join(modDir, rel), path.join(dest, rel));
  }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    if (fs.existsSync(path.join(modDir, f))) fs.copyFileSync(path.join(modDir, f), path.join(dest, f));
  }
}
