/**
 * The disk layout `image build` makes (pure). Always GPT, partitions aligned
 * to 1 MiB:
 *
 *   ESP   FAT16, 256 MiB (uefi, both): systemd-boot as EFI/BOOT/BOOTX64.EFI,
 *         loader entry, a copy of the kernel and initrd
 *   boot  ext4, 512 MiB (bios or both, with an xfs root only): extlinux,
 *         kernel and initrd, mounted at /boot
 *   root  ext4 or xfs, the rest, mounted at /
 *
 * For BIOS the partition holding extlinux (root when ext4, else boot) carries
 * the GPT legacy-BIOS-bootable attribute and gptmbr.bin sits in the protective
 * MBR; the same disk then boots on SeaBIOS and on OVMF (`both`). ext4 for
 * extlinux is made with 4 KiB blocks and without `64bit` (extlinux 6.04 cannot
 * read it otherwise).
 */
import { InvalidInputError } from '../../../protocol/errors.js';

export const FIRMWARES = ['bios', 'uefi', 'both'] as const;
export type Firmware = (typeof FIRMWARES)[number];
export const ROOT_FS = ['ext4', 'xfs'] as const;
export type RootFs = (typeof ROOT_FS)[number];

export const SECTOR = 512;
export const MiB = 1024 * 1024;
const ALIGN = MiB / SECTOR;
export const ESP_BYTES = 256 * MiB;
export const BOOT_BYTES = 512 * MiB;
/** Space before the first partition and after the last (GPT headers and backup). */
const EDGE_BYTES = MiB;

export interface PlannedPartition {
  number: number;
  role: 'esp' | 'boot' | 'root';
  fs: 'vfat' | 'ext4' | 'xfs';
  /** First and last sector (inclusive). */
  start: number;
  end: number;
  /** sgdisk type code. */
  type: string;
  label: string;
  partUuid: string;
  /** File system UUID (vfat: 8 hex digits, the volume id). */
  fsUuid: string;
  /** Where it is mounted in the installed system. */
  mountPoint: '/' | '/boot' | '/boot/efi';
  /** Carries the legacy-BIOS-bootable attribute and extlinux. */
  legacyBoot: boolean;
}

export interface DiskPlan {
  sizeBytes: number;
  firmware: Firmware;
  partitions: PlannedPartition[];
}

export function parseFirmware(s: string): Firmware {
  if (!(FIRMWARES as readonly string[]).includes(s)) throw new InvalidInputError(`--firmware must be one of ${FIRMWARES.join('|')}, not ${JSON.stringify(s)}`);
  return s as Firmware;
}

export function parseRootFs(s: string): RootFs {
  if (!(ROOT_FS as readonly string[]).includes(s)) throw new InvalidInputError(`--fs must be one of ${ROOT_FS.join('|')}, not ${JSON.stringify(s)}`);
  return s as RootFs;
}

/** `8G`, `512M`, `1.5GiB`, `1073741824` (binary units) -> bytes, whole MiB. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(s);
  if (!m) throw new InvalidInputError(`malformed size ${JSON.stringify(s)} (want e.g. 8G, 512M)`);
  const mult = { '': 1, K: 1024, M: MiB, G: 1024 * MiB, T: 1024 * 1024 * MiB }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const bytes = Math.ceil((Number(m[1]) * mult) / MiB) * MiB;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidInputError(`size ${JSON.stringify(s)} is out of range`);
  return bytes;
}

/** Bytes of everything but the root partition. */
export function overheadBytes(firmware: Firmware, fs: RootFs): number {
  const esp = firmware === 'bios' ? 0 : ESP_BYTES;
  const boot = firmware !== 'uefi' && fs === 'xfs' ? BOOT_BYTES : 0;
  return 2 * EDGE_BYTES + esp + boot;
}

/** Smallest root file system per type (mkfs.xfs refuses below 300 MiB). */
const MIN_ROOT: Record<RootFs, number> = { ext4: 64 * MiB, xfs: 320 * MiB };

/**
 * Root file system bytes needed for `contentBytes` of files: the content plus
 * a tenth for metadata and slack, plus 64 MiB (journal, xfs log); at least
 * what the file system type allows.
 */
export function rootBytesNeeded(contentBytes: number, fs: RootFs = 'ext4'): number {
  return Math.max(MIN_ROOT[fs], Math.ceil((contentBytes * 1.1 + 64 * MiB) / MiB) * MiB);
}

/** The size to use when none is given: what is needed plus a quarter, at least 1 GiB. */
export function defaultSize(contentBytes: number, firmware: Firmware, fs: RootFs): number {
  const root = Math.ceil((rootBytesNeeded(contentBytes, fs) * 1.25) / MiB) * MiB;
  return Math.max(1024 * MiB, root + overheadBytes(firmware, fs));
}

/**
 * The layout for a disk of `sizeBytes`. InvalidInputError when the disk is
 * too small for `contentBytes` of root file system content.
 */
export function planDisk(o: { sizeBytes: number; firmware: Firmware; fs: RootFs; contentBytes: number; uuid: () => string; volumeId: () => string }): DiskPlan {
  const rootAvail = o.sizeBytes - overheadBytes(o.firmware, o.fs);
  const need = rootBytesNeeded(o.contentBytes, o.fs);
  if (rootAvail < need) {
    const min = need + overheadBytes(o.firmware, o.fs);
    throw new InvalidInputError(
      `size too small: the root file system needs about ${Math.ceil(need / MiB)} MiB for ${Math.ceil(o.contentBytes / MiB)} MiB of files, ${Math.max(0, Math.floor(rootAvail / MiB))} MiB would be left; use --size ${Math.ceil(min / MiB)}M or more`,
    );
  }
  const parts: PlannedPartition[] = [];
  let next = EDGE_BYTES / SECTOR;
  const add = (role: PlannedPartition['role'], bytes: number | 'rest', p: Omit<PlannedPartition, 'number' | 'role' | 'start' | 'end' | 'partUuid' | 'fsUuid'>) => {
    const start = next;
    const end = bytes === 'rest' ? Math.floor((o.sizeBytes - EDGE_BYTES) / SECTOR / ALIGN) * ALIGN - 1 : start + bytes / SECTOR - 1;
    next = end + 1;
    parts.push({ number: parts.length + 1, role, start, end, partUuid: o.uuid(), fsUuid: p.fs === 'vfat' ? o.volumeId() : o.uuid(), ...p });
  };
  const bios = o.firmware !== 'uefi';
  if (o.firmware !== 'bios') add('esp', ESP_BYTES, { fs: 'vfat', type: 'ef00', label: 'EFI system', mountPoint: '/boot/efi', legacyBoot: false });
  const separateBoot = bios && o.fs === 'xfs';
  if (separateBoot) add('boot', BOOT_BYTES, { fs: 'ext4', type: '8300', label: 'boot', mountPoint: '/boot', legacyBoot: true });
  add('root', 'rest', { fs: o.fs, type: '8304', label: 'root', mountPoint: '/', legacyBoot: bios && !separateBoot });
  return { sizeBytes: o.sizeBytes, firmware: o.firmware, partitions: parts };
}

/** Bytes of a planned partition. */
export function partitionBytes(p: PlannedPartition): number {
  return (p.end - p.start + 1) * SECTOR;
}
