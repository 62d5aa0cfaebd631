/**
 * `kickswarm image build` as a user runs it (root): from a small rootfs
 * tarball (busybox + a Debian kernel, test/helpers/rootfs.ts) to a disk image
 * whose partitions, file systems and boot loader files are checked, which
 * boots in QEMU (TCG) on SeaBIOS and on OVMF to the rootfs's own init, and
 * which lands in the image store. Bad input is refused with exit 2 and leaves
 * no loop device, mount or file behind.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { UnavailableError } from '../../protocol/errors.js';
import { requireTools } from '../../server/images/build/tools.js';
import { kickswarm } from '../helpers/cli.js';
import { ROOTFS_MARKER, testRootfsTar } from '../helpers/rootfs.js';
import { skipBecause } from '../helpers/skip.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const NEEDED = ['sgdisk', 'mke2fs', 'mkfs.vfat', 'mcopy', 'extlinux', 'losetup', 'qemu-system-x86_64'];
const FILES = ['/usr/lib/syslinux/mbr/gptmbr.bin', '/usr/lib/systemd/boot/efi/systemd-bootx64.efi', '/usr/share/OVMF/OVMF_CODE_4M.fd'];

/** Loop devices backed by files under `dir`, and mounts of build directories. */
function leftovers(dir: string): string[] {
  const loops = execFileSync('losetup', ['-a'])
    .toString()
    .split('\n')
    .filter((l) => l.includes(dir));
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('kickswarm-build-') && l.includes(dir));
  return [...loops, ...mounts];
}

/** Boots `disk` (a copy-on-write snapshot) and resolves with the serial output once the marker shows, or rejects at the deadline. */
function bootToMarker(disk: string, firmware: 'bios' | 'uefi', dir: string, timeoutMs = 240_000): Promise<string> {
  const args = ['-accel', 'tcg', '-cpu', 'max', '-m', '256', '-nographic', '-no-reboot', '-display', 'none', '-monitor', 'none', '-serial', 'stdio'];
  if (firmware === 'uefi') {
    const vars = path.join(dir, 'vars.fd');
    fs.copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
    args.push('-machine', 'q35', '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd', '-drive', `if=pflash,format=raw,file=${vars}`);
  }
  args.push('-drive', `file=${disk},format=raw,if=virtio,snapshot=on`);
  return new Promise((resolve, reject) => {
    const vm = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      vm.kill('SIGKILL');
      reject(new Error(`${firmware}: no ${ROOTFS_MARKER} on serial within ${timeoutMs / 1000} s; last output: ${out.slice(-800)}`));
    }, timeoutMs);
    vm.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      if (out.length > 1 << 20) out = out.slice(-(1 << 19));
      // Only a complete line: the marker may arrive before the rest of its line.
      const line = out
        .split('\n')
        .slice(0, -1)
        .find((l) => l.includes(ROOTFS_MARKER));
      if (line) {
        clearTimeout(timer);
        vm.kill('SIGKILL');
        resolve(line);
      }
    });
    vm.on('exit', () => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.includes(ROOTFS_MARKER));
      if (line) resolve(line);
      else reject(new Error(`${firmware}: the VM stopped without ${ROOTFS_MARKER}; last output: ${out.slice(-800)}`));
    });
  });
}

describe('kickswarm image build', function () {
  this.timeout(900_000);
  let dir: string;
  let tar: string;
  before(function () {
    if (process.getuid?.() !== 0) return skipBecause(this, 'image build needs root (loop devices, mounts)');
    const missing = [...NEEDED.filter((c) => !has(c)), ...FILES.filter((f) => !fs.existsSync(f))];
    if (missing.length) return skipBecause(this, `missing ${missing.join(', ')} (Debian: gdisk e2fsprogs dosfstools mtools extlinux syslinux-common systemd-boot-efi ovmf qemu-system-x86)`);
    dir = tmpDir();
    tar = testRootfsTar();
  });
  after(cleanupTmpDirs);

  it('builds a hybrid BIOS+UEFI disk: GPT, ESP with systemd-boot, ext4 root with extlinux and the legacy-bootable attribute', function () {
    const out = path.join(dir, 'both.raw');
    const r = kickswarm(path.join(dir, 'data'), ['image', 'build', '--from-tar', tar, '--output', out, '--size', '768M'], {});
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/image build: \[1\] measuring/);
    expect(r.stderr).to.match(/partitioning 768 MiB, GPT for both: 1:esp vfat 256 MiB, 2:root ext4/);
    expect(fs.statSync(out).size).to.equal(768 * 1024 * 1024);
    const table = execFileSync('sgdisk', ['-p', out]).toString();
    expect(table).to.match(/^\s+1\s+2048\s+526335\s.*EF00\s+EFI system$/m);
    expect(table).to.match(/^\s+2\s+526336\s.*8304\s+root$/m);
    expect(execFileSync('sgdisk', ['-A', '2:show', out]).toString()).to.match(/legacy BIOS bootable/);
    const mbr = fs.readFileSync(out).subarray(0, 440);
    expect(mbr.equals(fs.readFileSync('/usr/lib/syslinux/mbr/gptmbr.bin').subarray(0, 440))).to.equal(true);

    const esp = `${out}@@${2048 * 512}`;
    const mdir = (p: string) => execFileSync('mdir', ['-b', '-i', esp, p], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
    expect(mdir('::/EFI/BOOT')).to.match(/BOOTX64\.EFI/i);
    expect(mdir('::/')).to.match(/vmlinuz-/);
    const entry = execFileSync('mtype', ['-i', esp, '::/loader/entries/kickswarm.conf'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
    expect(entry).to.match(/^linux \/vmlinuz-\S+$/m);
    expect(entry).to.match(/^options root=PARTUUID=[0-9a-f-]{36} rootfstype=ext4 rw/m);

    // The root file system, read without mounting: extlinux installed, fstab written.
    const loop = execFileSync('losetup', ['-f', '--show', '-r', '--offset', String(526336 * 512), out])
      .toString()
      .trim();
    try {
      const ls = execFileSync('debugfs', ['-R', 'ls -l /boot/extlinux', loop], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      expect(ls)
        .to.match(/ldlinux\.sys/)
        .and.to.match(/ldlinux\.c32/)
        .and.to.match(/extlinux\.conf/);
      const conf = execFileSync('debugfs', ['-R', 'cat /boot/extlinux/extlinux.conf', loop], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      expect(conf)
        .to.match(/^\s+LINUX \/boot\/vmlinuz-/m)
        .and.to.match(/^\s+INITRD \/boot\/initrd\.img-/m);
      const fstab = execFileSync('debugfs', ['-R', 'cat /etc/fstab', loop], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      expect(fstab)
        .to.match(/^UUID=[0-9a-f-]{36}\t\/\text4/m)
        .and.to.match(/^UUID=[0-9A-F]{4}-[0-9A-F]{4}\t\/boot\/efi\tvfat/m);
      const features = execFileSync('dumpe2fs', ['-h', loop], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      expect(features).to.match(/Block size:\s+4096/);
      expect(/Filesystem features:.*\b64bit\b/.exec(features)).to.equal(null);
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
    expect(leftovers(dir)).to.deep.equal([]);
  });

  it('boots that disk on SeaBIOS and on OVMF to the rootfs init, root found by PARTUUID', async function () {
    const out = path.join(dir, 'both.raw');
    // Built by the test before; when that failed, this one fails too rather than skipping.
    expect(fs.existsSync(out), `${out} (built by the previous test)`).to.equal(true);
    const [bios, uefi] = await Promise.all([bootToMarker(out, 'bios', dir), bootToMarker(out, 'uefi', dir)]);
    for (const line of [bios, uefi]) expect(line).to.match(/root=PARTUUID=[0-9a-f-]{36} rootfstype=ext4 rw .*fstab=2/);
    expect(bios).to.match(/BOOT_IMAGE=\/boot\/vmlinuz-/);
    expect(uefi).to.match(/initrd=\\initrd\.img-/);
  });

  it('an xfs root gets an ext4 /boot for extlinux and boots on SeaBIOS; the result is added to the store as the next version', async function () {
    const data = path.join(dir, 'data');
    const out = path.join(dir, 'xfs.raw');
    if (!has('mkfs.xfs')) return skipBecause(this, 'mkfs.xfs missing (Debian: xfsprogs)');
    const r = kickswarm(data, ['image', 'build', '--from-tar', tar, '--fs', 'xfs', '--firmware', 'bios', '--output', out, '--name', 'tiny']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/GPT for bios: 1:boot ext4 512 MiB, 2:root xfs/);
    expect(execFileSync('sgdisk', ['-A', '1:show', out]).toString()).to.match(/legacy BIOS bootable/);
    expect(r.stdout).to.match(/version: +1 \(tiny@1/);
    const line = await bootToMarker(out, 'bios', dir);
    expect(line).to.match(/rootfstype=xfs .*fstab=2\b/);
    const noKernel = path.join(dir, 'nokernel');
    fs.mkdirSync(path.join(noKernel, 'etc'), { recursive: true });
    const again = kickswarm(data, ['image', 'build', '--from-dir', noKernel, '--name', 'tiny', '--firmware', 'uefi']);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.match(/no kernel/);
    const list = JSON.parse(kickswarm(data, ['image', 'list', '--json']).stdout) as { name: string; current: number }[];
    expect(list.map((i) => [i.name, i.current])).to.deep.equal([['tiny', 1]]);
    expect(fs.readdirSync(path.join(data, 'images')).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    expect(leftovers(dir)).to.deep.equal([]);
  });

  it('refuses bad input with exit 2 and one clear line, leaving nothing behind', () => {
    const data = path.join(dir, 'data2');
    const bad = path.join(dir, 'bad.tar');
    fs.writeFileSync(bad, 'this is not a tarball\n'.repeat(100));
    const cases: [string[], RegExp][] = [
      [['--from-tar', bad, '--output', path.join(dir, 'x.raw')], /not a readable tar archive/],
      [['--from-tar', tar, '--output', path.join(dir, 'x.raw'), '--size', '300M'], /size too small: .* use --size \d+M or more/],
      [['--from-tar', path.join(dir, 'missing.tar'), '--name', 'x'], /no such file/],
      [['--from-tar', tar], /--name NAME .* --output FILE/],
      [['--from-tar', tar, '--from-dir', dir, '--name', 'x'], /exactly one of/],
      [['--from-tar', tar, '--name', 'x', '--fs', 'btrfs'], /--fs must be one of ext4\|xfs/],
      [['--from-tar', tar, '--name', 'x', '--firmware', 'coreboot'], /--firmware must be one of bios\|uefi\|both/],
      [['--from-tar', tar, '--name', 'x', '--size', 'big'], /malformed size/],
    ];
    for (const [args, msg] of cases) {
      const r = kickswarm(data, ['image', 'build', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(
        r.stderr.split('\n').filter((l) => l.startsWith('kickswarm:')),
        args.join(' '),
      ).to.have.length(1);
      expect(r.stderr).to.match(msg);
    }
    expect(fs.existsSync(path.join(dir, 'x.raw'))).to.equal(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    expect(leftovers(dir)).to.deep.equal([]);
  });

  it('names the Debian package of a missing tool', () => {
    expect(() =>
      requireTools([
        { what: '/nonexistent/gptmbr.bin', pkg: 'syslinux-common' },
        { what: 'no-such-mkfs', pkg: 'xfsprogs' },
      ]),
    ).to.throw(UnavailableError, /needs \/nonexistent\/gptmbr\.bin, no-such-mkfs: install Debian packages syslinux-common xfsprogs/);
  });
});
