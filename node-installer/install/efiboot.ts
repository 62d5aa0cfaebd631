/**
 * The installer's last step on a UEFI machine before a firmware reboot: a boot
 * entry (`Boot####`, description EFI_ENTRY_DESCRIPTION) for the loader the
 * installed disk's EFI system partition holds at the removable-media path
 * (`\EFI\BOOT\BOOTX64.EFI`), placed right after the network entry the machine
 * booted from in `BootOrder`, and `BootNext` set to it. The firmware then boots
 * the installed system once, straight from the disk; later boots go through
 * the network as before, where the `os` iPXE script leaves with an error
 * status so the firmware goes on to the next entry, this one.
 *
 * Written through efivarfs (`/sys/firmware/efi/efivars`), mounted here when
 * needed: no efibootmgr in the boot environment. The device path is the short
 * form efibootmgr writes too (`HD(n,GPT,<guid>,start,size)/\EFI\BOOT\BOOTX64.EFI`),
 * which firmware expands by the partition GUID. Pure encoders are exported
 * for tests; `setEfiBootNext` does nothing (and says so) on a BIOS machine or a
 * target without a GPT EFI system partition.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';

const run = promisify(execFile);

export const EFI_GLOBAL_GUID = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_ENTRY_DESCRIPTION = 'kickswarm installed system';
export const REMOVABLE_LOADER = '\\EFI\\BOOT\\BOOTX64.EFI';
const ESP_TYPE = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';
/** NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS. */
const VAR_ATTRS = 0x7;

export interface GptPartition {
  /** 1-based. */
  number: number;
  typeGuid: string;
  /** The unique partition GUID as stored on disk (16 bytes, mixed endian). */
  guidBytes: Buffer;
  firstLba: bigint;
  lastLba: bigint;
}

/** The textual GUID of 16 on-disk bytes (first three fields little endian). */
export function guidToString(b: Buffer): string {
  const h = (x: Buffer) => x.toString('hex');
  const le = (o: number, n: number) => h(Buffer.from(b.subarray(o, o + n)).reverse());
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

/** The partitions of a GPT disk whose first `head` bytes (at least up to its entry array) are given; [] when there is no GPT. */
export function parseGpt(head: Buffer, sectorSize = 512): GptPartition[] {
  const hdr = head.subarray(sectorSize, sectorSize * 2);
  if (hdr.length < 92 || hdr.toString('latin1', 0, 8) !== 'EFI PART') return [];
  const entriesLba = Number(hdr.readBigUInt64LE(72));
  const count = hdr.readUInt32LE(80);
  const size = hdr.readUInt32LE(84);
  if (size < 128 || count > 1024) return [];
  const out: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const off = entriesLba * sectorSize + i * size;
    if (off + 128 > head.length) break;
    const e = head.subarray(off, off + 128);
    const type = guidToString(e.subarray(0, 16));
    if (type === '00000000-0000-0000-0000-000000000000') continue;
    out.push({ number: i + 1, typeGuid: type, guidBytes: Buffer.from(e.subarray(16, 32)), firstLba: e.readBigUInt64LE(32), lastLba: e.readBigUInt64LE(40) });
  }
  return out;
}

function ucs2z(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf16le');
}

/** `HD(n,GPT,guid,start,size)/File(loader)/End` (UEFI spec 10.3.5.1 and 10.3.5.4). */
export function hdFileDevicePath(p: GptPartition, loader: string): Buffer {
  const hd = Buffer.alloc(42);
  hd.writeUInt8(0x04, 0);
  hd.writeUInt8(0x01, 1);
  hd.writeUInt16LE(42, 2);
  hd.writeUInt32LE(p.number, 4);
  hd.writeBigUInt64LE(p.firstLba, 8);
  hd.writeBigUInt64LE(p.lastLba - p.firstLba + 1n, 16);
  p.guidBytes.copy(hd, 24);
  hd.writeUInt8(0x02, 40); // GPT
  hd.writeUInt8(0x02, 41); // GUID signature
  const name = ucs2z(loader);
  const file = Buffer.alloc(4 + name.length);
  file.writeUInt8(0x04, 0);
  file.writeUInt8(0x04, 1);
  file.writeUInt16LE(file.length, 2);
  name.copy(file, 4);
  return Buffer.concat([hd, file, Buffer.from([0x7f, 0xff, 0x04, 0x00])]);
}

/** An EFI_LOAD_OPTION (active) with `description` and `devicePath`. */
export function loadOption(description: string, devicePath: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32LE(1, 0);
  head.writeUInt16LE(devicePath.length, 4);
  return Buffer.concat([head, ucs2z(description), devicePath]);
}

/** The description of an EFI_LOAD_OPTION, or undefined when malformed. */
export function loadOptionDescription(opt: Buffer): string | undefined {
  for (let i = 6; i + 1 < opt.length; i += 2) if (opt.readUInt16LE(i) === 0) return opt.toString('utf16le', 6, i);
  return undefined;
}

/** `order` with `entry` moved to just after `after` (or to the front when `after` is not in it). */
export function placeAfter(order: number[], entry: number, after: number | undefined): number[] {
  const rest = order.filter((x) => x !== entry);
  const at = after === undefined ? -1 : rest.indexOf(after);
  rest.splice(at + 1, 0, entry);
  return rest;
}

const bootName = (n: number) => `Boot${n.toString(16).toUpperCase().padStart(4, '0')}`;

class EfiVars {
  constructor(readonly dir: string) {}
  private file(name: string): string {
    return path.join(this.dir, `${name}-${EFI_GLOBAL_GUID}`);
  }
  read(name: string): Buffer | undefined {
    try {
      return fs.readFileSync(this.file(name)).subarray(4);
    } catch {
      return undefined;
    }
  }
  async write(name: string, data: Buffer): Promise<void> {
    const f = this.file(name);
    if (fs.existsSync(f)) await run('chattr', ['-i', f]).catch(() => undefined);
    // efivarfs takes a variable in exactly one write: attributes, then the data.
    fs.writeFileSync(f, Buffer.concat([Buffer.from([VAR_ATTRS, 0, 0, 0]), data]));
  }
  async remove(name: string): Promise<void> {
    const f = this.file(name);
    await run('chattr', ['-i', f]).catch(() => undefined);
    fs.rmSync(f, { force: true });
  }
  bootEntries(): number[] {
    const re = new RegExp(`^Boot([0-9A-F]{4})-${EFI_GLOBAL_GUID}$`);
    return fs.readdirSync(this.dir).flatMap((f) => {
      const m = re.exec(f);
      return m ? [Number.parseInt(m[1]!, 16)] : [];
    });
  }
}

async function mountEfivarfs(dir: string, log: Logger): Promise<boolean> {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) return true;
  await run('modprobe', ['efivarfs']).catch(() => undefined);
  try {
    await run('mount', ['-t', 'efivarfs', 'efivarfs', dir]);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'cannot mount efivarfs: the firmware will not be told to boot the installed disk next');
    return false;
  }
  return fs.readdirSync(dir).length > 0;
}

/**
 * Points the firmware's next boot at the installed disk (see the file comment).
 * Returns the entry number set, or undefined when there was nothing to do or it
 * failed (logged; the install itself stands).
 */
export async function setEfiBootNext(o: { target: string; log: Logger; sysfs?: string }): Promise<number | undefined> {
  const sys = o.sysfs ?? '/sys/firmware/efi';
  if (!fs.existsSync(sys)) return undefined;
  try {
    const head = Buffer.alloc(1 << 20);
    const fd = fs.openSync(o.target, 'r');
    let n: number;
    try {
      n = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    const disk = head.subarray(0, n);
    const esp = [512, 4096].map((s) => parseGpt(disk, s).find((p) => p.typeGuid === ESP_TYPE)).find(Boolean);
    if (!esp) {
      o.log.warn({ target: o.target }, 'UEFI machine, but the installed disk has no GPT EFI system partition: the firmware is not told to boot it');
      return undefined;
    }
    const dir = path.join(sys, 'efivars');
    if (!(await mountEfivarfs(dir, o.log))) return undefined;
    const vars = new EfiVars(dir);
    const entries = vars.bootEntries();
    for (const e of entries) {
      const opt = vars.read(bootName(e));
      if (opt && loadOptionDescription(opt) === EFI_ENTRY_DESCRIPTION) await vars.remove(bootName(e));
    }
    const taken = new Set(vars.bootEntries());
    let num = 0x1000;
    while (taken.has(num)) num++;
    await vars.write(bootName(num), loadOption(EFI_ENTRY_DESCRIPTION, hdFileDevicePath(esp, REMOVABLE_LOADER)));
    const orderBuf = vars.read('BootOrder');
    const order = orderBuf ? Array.from({ length: orderBuf.length >> 1 }, (_, i) => orderBuf.readUInt16LE(i * 2)).filter((x) => taken.has(x)) : [];
    const current = vars.read('BootCurrent');
    const next = placeAfter(order, num, current && current.length >= 2 ? current.readUInt16LE(0) : undefined);
    const ob = Buffer.alloc(next.length * 2);
    next.forEach((x, i) => ob.writeUInt16LE(x, i * 2));
    await vars.write('BootOrder', ob);
    const nb = Buffer.alloc(2);
    nb.writeUInt16LE(num, 0);
    await vars.write('BootNext', nb);
    o.log.info({ entry: bootName(num), partition: esp.number, loader: REMOVABLE_LOADER, bootOrder: next.map(bootName) }, 'UEFI: BootNext set to the installed disk');
    return num;
  } catch (e) {
    o.log.warn({ err: (e as Error).message }, 'UEFI: cannot set BootNext to the installed disk; the firmware boots what its boot order says');
    return undefined;
  }
}
