/**
 * The installer's UEFI step: the GPT of a real disk image (made by sgdisk) is
 * read, and the boot entry, BootOrder and BootNext it writes into an
 * efivarfs-shaped folder are the bytes the UEFI spec describes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import {
  EFI_ENTRY_DESCRIPTION,
  EFI_GLOBAL_GUID,
  guidToString,
  hdFileDevicePath,
  loadOption,
  loadOptionDescription,
  parseGpt,
  placeAfter,
  REMOVABLE_LOADER,
  setEfiBootNext,
} from '../../node-installer/install/efiboot.js';
import { skipBecause } from '../helpers/skip.js';
import { tmpDir } from '../helpers/tmp.js';

const log = pino({ level: 'silent' });
const ESP_GUID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

function u16(list: number[]): Buffer {
  const b = Buffer.alloc(list.length * 2);
  list.forEach((x, i) => b.writeUInt16LE(x, i * 2));
  return b;
}

describe('installer: UEFI BootNext to the installed disk', () => {
  let dir: string;
  let disk: string;
  before(function () {
    if (spawnSync('sh', ['-c', 'command -v sgdisk']).status !== 0) skipBecause(this, 'sgdisk is not installed (apt-get install gdisk)');
    dir = tmpDir('kickswarm-efiboot-');
    disk = path.join(dir, 'disk.raw');
    fs.writeFileSync(disk, Buffer.alloc(0));
    fs.truncateSync(disk, 64 << 20);
    execFileSync('sgdisk', ['-n', '1:2048:+32M', '-t', '1:ef00', '-u', `1:${ESP_GUID}`, '-n', '2:0:0', '-t', '2:8304', disk], { stdio: 'ignore' });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds the EFI system partition with its GUID, start and end as sgdisk wrote them', () => {
    const parts = parseGpt(fs.readFileSync(disk).subarray(0, 1 << 20));
    expect(parts.map((p) => p.number)).to.deep.equal([1, 2]);
    const esp = parts[0]!;
    expect(esp.typeGuid).to.equal('c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
    expect(guidToString(esp.guidBytes)).to.equal(ESP_GUID);
    expect(esp.firstLba).to.equal(2048n);
    expect(esp.lastLba).to.equal(2048n + 32n * 2048n - 1n);
    expect(parseGpt(Buffer.alloc(1 << 16))).to.deep.equal([]);
  });

  it('encodes HD(1,GPT,guid,2048,65536)/\\EFI\\BOOT\\BOOTX64.EFI and an active load option', () => {
    const esp = parseGpt(fs.readFileSync(disk).subarray(0, 1 << 20))[0]!;
    const dp = hdFileDevicePath(esp, REMOVABLE_LOADER);
    expect(dp.subarray(0, 4)).to.deep.equal(Buffer.from([4, 1, 42, 0]));
    expect(dp.readUInt32LE(4)).to.equal(1);
    expect(dp.readBigUInt64LE(8)).to.equal(2048n);
    expect(dp.readBigUInt64LE(16)).to.equal(65536n);
    expect(guidToString(dp.subarray(24, 40))).to.equal(ESP_GUID);
    expect([dp[40], dp[41]]).to.deep.equal([2, 2]);
    const fileLen = dp.readUInt16LE(44);
    expect([dp[42], dp[43]]).to.deep.equal([4, 4]);
    expect(dp.toString('utf16le', 46, 42 + fileLen - 2)).to.equal(REMOVABLE_LOADER);
    expect(dp.subarray(42 + fileLen)).to.deep.equal(Buffer.from([0x7f, 0xff, 4, 0]));
    const opt = loadOption(EFI_ENTRY_DESCRIPTION, dp);
    expect(opt.readUInt32LE(0)).to.equal(1);
    expect(opt.readUInt16LE(4)).to.equal(dp.length);
    expect(loadOptionDescription(opt)).to.equal(EFI_ENTRY_DESCRIPTION);
    expect(opt.subarray(opt.length - dp.length)).to.deep.equal(dp);
  });

  it('places the entry right after the entry booted from', () => {
    expect(placeAfter([1, 2, 3], 9, 2)).to.deep.equal([1, 2, 9, 3]);
    expect(placeAfter([1, 9, 2], 9, 2)).to.deep.equal([1, 2, 9]);
    expect(placeAfter([1, 2], 9, undefined)).to.deep.equal([9, 1, 2]);
  });

  it('writes Boot1000, BootOrder and BootNext; a second install replaces its own entry; a BIOS machine is left alone', async () => {
    const sys = path.join(dir, 'sys');
    const vars = path.join(sys, 'efivars');
    fs.mkdirSync(vars, { recursive: true });
    const v = (name: string) => path.join(vars, `${name}-${EFI_GLOBAL_GUID}`);
    const attrs = Buffer.from([7, 0, 0, 0]);
    fs.writeFileSync(v('Boot0001'), Buffer.concat([attrs, loadOption('UEFI PXEv4', Buffer.from([0x7f, 0xff, 4, 0]))]));
    fs.writeFileSync(v('Boot0002'), Buffer.concat([attrs, loadOption('UEFI Misc Device', Buffer.from([0x7f, 0xff, 4, 0]))]));
    fs.writeFileSync(v('BootOrder'), Buffer.concat([attrs, u16([1, 2])]));
    fs.writeFileSync(v('BootCurrent'), Buffer.concat([Buffer.from([6, 0, 0, 0]), u16([1])]));

    expect(await setEfiBootNext({ target: disk, log, sysfs: sys })).to.equal(0x1000);
    const entry = fs.readFileSync(v('Boot1000'));
    expect(entry.subarray(0, 4)).to.deep.equal(attrs);
    expect(loadOptionDescription(entry.subarray(4))).to.equal(EFI_ENTRY_DESCRIPTION);
    expect(fs.readFileSync(v('BootOrder'))).to.deep.equal(Buffer.concat([attrs, u16([1, 0x1000, 2])]));
    expect(fs.readFileSync(v('BootNext'))).to.deep.equal(Buffer.concat([attrs, u16([0x1000])]));

    // Another install: the old entry goes, one new one takes its place (no pile-up).
    fs.writeFileSync(v('Boot1000'), entry);
    expect(await setEfiBootNext({ target: disk, log, sysfs: sys })).to.equal(0x1000);
    expect(fs.readdirSync(vars).filter((f) => f.startsWith('Boot1'))).to.have.length(1);
    expect(fs.readFileSync(v('BootOrder'))).to.deep.equal(Buffer.concat([attrs, u16([1, 0x1000, 2])]));

    expect(await setEfiBootNext({ target: disk, log, sysfs: path.join(dir, 'no-efi') })).to.equal(undefined);
    const mbr = path.join(dir, 'mbr.raw');
    fs.writeFileSync(mbr, Buffer.alloc(1 << 20));
    expect(await setEfiBootNext({ target: mbr, log, sysfs: sys })).to.equal(undefined);
  });
});
