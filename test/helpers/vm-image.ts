/**
 * A small bootable BIOS disk image for VM tests, made from Debian packages
 * (apt-get download + dpkg-deb -x, never installed): MBR + one ext4 partition
 * (`mke2fs -b 4096 -O ^64bit`, what extlinux 6.04 reads) holding the Debian
 * kernel, a busybox initramfs that mounts `root=` and switches to it, extlinux,
 * and an /sbin/init that prints `KICKSWARM-TEST-BOOTED hostname=<etc/hostname>`
 * on the serial console and powers off. Cached by its recipe under `cacheDir`.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeInitrd } from '../../server/bootenv/cpio.js';
import { DebFetcher } from '../../server/bootenv/debs.js';
import { copyModules, selectModules } from '../../server/bootenv/modules.js';

const exec = promisify(execFile);

export const BOOTED_MARKER = 'KICKSWARM-TEST-BOOTED';
const RECIPE = 4;

const INITRAMFS_INIT = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
modprobe -a virtio_pci virtio_blk ata_piix sd_mod crc32c_generic ext4 2>/dev/null
root=
for w in $(cat /proc/cmdline); do case $w in root=*) root=\${w#root=} ;; esac; done
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
mkdir -p /newroot
mount -t ext4 -o rw "$root" /newroot || { echo "initramfs: cannot mount root=$root"; exec sh; }
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot /sbin/init
`;

/** For the GPT disk: root= is `PARTUUID=...` (image build's), which busybox cannot resolve: take the partition that holds /sbin/init. */
const GPT_INITRAMFS_INIT = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
modprobe -a virtio_pci virtio_blk ata_piix sd_mod crc32c_generic ext4 2>/dev/null
mkdir -p /newroot
i=0
while [ $i -lt 100 ]; do
  for d in /dev/vd?[0-9] /dev/sd?[0-9]; do
    [ -b "$d" ] || continue
    if mount -t ext4 -o rw "$d" /newroot 2>/dev/null; then
      if [ -x /newroot/sbin/init ]; then
        mount --move /dev /newroot/dev
        umount /sys /proc
        exec switch_root /newroot /sbin/init
      fi
      umount /newroot
    fi
  done
  sleep 0.2; i=$((i + 1))
done
echo "initramfs: no root file system found"; exec sh
`;

const ROOT_INIT = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
echo "${BOOTED_MARKER} hostname=$(cat /etc/hostname) cmdline=$(cat /proc/cmdline)" > /dev/ttyS0
sync
poweroff -f
`;

async function busyboxTree(busybox: string, root: string): Promise<void> {
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const a of (await exec(busybox, ['--list'])).stdout.split('\n').filter((x) => x && x !== 'busybox')) {
    const p = path.join(root, 'bin', a);
    if (!fs.existsSync(p)) fs.symlinkSync('busybox', p);
  }
  fs.symlinkSync('bin', path.join(root, 'sbin'));
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp', 'root']) fs.mkdirSync(path.join(root, d), { recursive: true });
}

/**
 * The installed system's tree under `work/root`: busybox, the marker-printing
 * init, a placeholder hostname, and the Debian kernel with a small initrd
 * (whose `/init` is `initramfsInit`) in `/boot`. Returns the root, the boot
 * folder and the kernel version.
 */
async function testRootTree(kdir: string, busybox: string, work: string, initramfsInit: string): Promise<{ root: string; boot: string; version: string }> {
  const modDir = path.join(kdir, 'lib/modules', fs.readdirSync(path.join(kdir, 'lib/modules'))[0]!);
  const version = path.basename(modDir);
  const ird = path.join(work, 'initramfs');
  await busyboxTree(busybox, ird);
  fs.writeFileSync(path.join(ird, 'init'), initramfsInit, { mode: 0o755 });
  const sel = selectModules(modDir, ['virtio_pci', 'virtio_blk', 'ata_piix', 'sd_mod', 'ext4', 'crc32c_generic'], []);
  copyModules(modDir, sel, ird, version);
  await exec(busybox, ['depmod', '-b', ird, version]);
  const root = path.join(work, 'root');
  await busyboxTree(busybox, root);
  fs.rmSync(path.join(root, 'bin/init'), { force: true });
  fs.writeFileSync(path.join(root, 'bin/init'), ROOT_INIT, { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'etc/hostname'), 'not-installed-by-kickswarm\n');
  const boot = path.join(root, 'boot');
  fs.mkdirSync(boot, { recursive: true });
  fs.copyFileSync(path.join(kdir, 'boot', `vmlinuz-${version}`), path.join(boot, `vmlinuz-${version}`));
  await writeInitrd(ird, path.join(boot, `initrd.img-${version}`), 'gzip');
  return { root, boot, version };
}

/** Builds (or reuses) the disk image; returns its path. Needs root (a loop mount for extlinux). */
export async function buildTestDisk(o: { cacheDir: string; sizeMiB?: number; log?: (s: string) => void }): Promise<string> {
  const sizeMiB = o.sizeMiB ?? 64;
  const debs = new DebFetcher({ kind: 'apt', cacheDir: path.join(o.cacheDir, 'debs') }, path.join(o.cacheDir, 'unpacked'));
  const kpkg = await debs.get(await debs.kernelPackage());
  const bpkg = await debs.get('busybox-static');
  const key = crypto.createHash('sha256').update(`${RECIPE} ${sizeMiB} ${kpkg.sha256} ${bpkg.sha256} ${INITRAMFS_INIT} ${ROOT_INIT}`).digest('hex').slice(0, 16);
  const out = path.join(o.cacheDir, `vmtest-disk-${key}.raw`);
  if (fs.existsSync(out)) return out;
  o.log?.(`building the test disk image ${out}`);
  const kdir = await debs.unpack(kpkg);
  const busybox = path.join(await debs.unpack(bpkg), 'bin/busybox');
  const work = fs.mkdtempSync(path.join(o.cacheDir, 'disk-work-'));
  const mnt = path.join(work, 'mnt');
  let loop: string | undefined;
  try {
    const { root, boot, version } = await testRootTree(kdir, busybox, work, INITRAMFS_INIT);
    fs.writeFileSync(path.join(root, 'etc/fstab'), '/dev/vda1 / ext4 defaults 0 1\n');
    fs.mkdirSync(path.join(boot, 'extlinux'), { recursive: true });
    fs.writeFileSync(
      path.join(boot, 'extlinux/extlinux.conf'),
      `DEFAULT linux\nTIMEOUT 0\nSERIAL 0 115200\nLABEL linux\n  KERNEL /boot/vmlinuz-${version}\n  INITRD /boot/initrd.img-${version}\n  APPEND root=/dev/vda1 rw console=ttyS0,115200 quiet no_timer_check panic=5\n`,
    );

    const raw = path.join(work, 'disk.raw');
    fs.writeFileSync(raw, Buffer.alloc(0));
    fs.truncateSync(raw, sizeMiB << 20);
    await new Promise<void>((resolve, reject) => {
      const c = execFile('sfdisk', ['-q', raw], (e) => (e ? reject(e) : resolve()));
      c.stdin!.end('label: dos\nstart=2048, type=83, bootable\n');
    });
    const offset = 2048 * 512;
    const blocks = ((sizeMiB << 20) - offset) / 4096;
    await exec('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', '^64bit', '-L', 'root', '-E', `offset=${offset}`, '-d', root, raw, String(blocks)]);
    loop = (await exec('losetup', ['-f', '--show', '-o', String(offset), raw])).stdout.trim();
    fs.mkdirSync(mnt);
    await exec('mount', [loop, mnt]);
    try {
      await exec('extlinux', ['--install', path.join(mnt, 'boot/extlinux')]);
    } finally {
      await exec('umount', [mnt]);
    }
    const mbr = fs.readFileSync('/usr/lib/EXTLINUX/mbr.bin');
    const fd = fs.openSync(raw, 'r+');
    fs.writeSync(fd, mbr, 0, 440, 0);
    fs.closeSync(fd);
    fs.renameSync(raw, out);
    return out;
  } finally {
    if (loop) await exec('losetup', ['-d', loop]).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * A GPT disk that boots on both firmwares, made by `kickswarm image build
 * --firmware both` from the same small root tree: an EFI system partition
 * with systemd-boot (`systemd-boot-efi`) as `\\EFI\\BOOT\\BOOTX64.EFI`, and
 * an ext4 root marked legacy-BIOS-bootable with extlinux and gptmbr.bin.
 * Cached by its recipe under `cacheDir`; needs root.
 */
export async function buildGptTestDisk(o: { cacheDir: string; repo: string; log?: (s: string) => void }): Promise<string> {
  const debs = new DebFetcher({ kind: 'apt', cacheDir: path.join(o.cacheDir, 'debs') }, path.join(o.cacheDir, 'unpacked'));
  const kpkg = await debs.get(await debs.kernelPackage());
  const bpkg = await debs.get('busybox-static');
  const key = crypto.createHash('sha256').update(`gpt 1 ${kpkg.sha256} ${bpkg.sha256} ${GPT_INITRAMFS_INIT} ${ROOT_INIT}`).digest('hex').slice(0, 16);
  const out = path.join(o.cacheDir, `vmtest-gpt-${key}.raw`);
  if (fs.existsSync(out)) return out;
  o.log?.(`building the GPT test disk image ${out}`);
  const kdir = await debs.unpack(kpkg);
  const busybox = path.join(await debs.unpack(bpkg), 'bin/busybox');
  const work = fs.mkdtempSync(path.join(o.cacheDir, 'gpt-work-'));
  try {
    const { root } = await testRootTree(kdir, busybox, work, GPT_INITRAMFS_INIT);
    const tmp = `${out}.tmp-${process.pid}`;
    await exec(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(o.repo, 'server/main.ts'),
        '--data-dir',
        path.join(work, 'data'),
        'image',
        'build',
        '--from-dir',
        root,
        '--firmware',
        'both',
        '--size',
        '360M',
        '--append',
        'quiet no_timer_check panic=5',
        '--output',
        tmp,
      ],
      { cwd: o.repo, maxBuffer: 16 << 20 },
    );
    fs.renameSync(tmp, out);
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
