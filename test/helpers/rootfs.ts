/**
 * A small bootable rootfs tarball for `image build` tests, made from Debian
 * packages (busybox-static and a linux-image .deb, fetched with `apt-get
 * download` or taken from apt's cache) and cached under
 * $KICKSWARM_TEST_CACHE (default /var/tmp/kickswarm-test-cache).
 *
 * Contents: busybox with its applet links, a kernel in /boot, an initramfs
 * (busybox + the virtio modules) that mounts the first partition holding
 * /sbin/init read-write and switches to it, and an /sbin/init that prints
 * `KICKSWARM-ROOTFS-UP <cmdline>` on the console and powers off.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const ROOTFS_MARKER = 'KICKSWARM-ROOTFS-UP';

const MODULES = [
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'drivers/block/virtio_blk.ko',
  'crypto/crc32c_generic.ko',
  'lib/libcrc32c.ko',
  'fs/xfs/xfs.ko',
];

const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export function cacheDir(): string {
  const d = process.env.KICKSWARM_TEST_CACHE ?? '/var/tmp/kickswarm-test-cache';
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** The .deb of `pkg` (a real package name), from the cache, apt's archive, or apt-get download. */
function deb(pkg: string): string {
  const dir = cacheDir();
  const have = (d: string) => fs.existsSync(d) && fs.readdirSync(d).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  const cached = have(dir);
  if (cached) return path.join(dir, cached);
  const archived = have('/var/cache/apt/archives');
  if (archived) {
    fs.copyFileSync(path.join('/var/cache/apt/archives', archived), path.join(dir, archived));
    return path.join(dir, archived);
  }
  sh('apt-get', ['download', pkg], dir);
  return path.join(dir, have(dir) as string);
}

/** The versioned kernel package behind a metapackage such as linux-image-cloud-amd64. */
function kernelPackage(meta: string): string {
  const archived = fs.existsSync('/var/cache/apt/archives') ? fs.readdirSync('/var/cache/apt/archives').find((f) => /^linux-image-\d.*-cloud-amd64_.*\.deb$/.test(f)) : undefined;
  if (archived) return archived.split('_')[0]!;
  const out = sh('apt-cache', ['depends', meta]);
  const m = /Depends: (linux-image-\d\S+)/.exec(out);
  if (!m) throw new Error(`cannot tell which kernel ${meta} depends on`);
  return m[1]!;
}

/** Builds (once) and returns the path of the test rootfs tarball (gzip). */
export function testRootfsTar(): string {
  const dir = cacheDir();
  const out = path.join(dir, 'rootfs-v2.tar.gz');
  if (fs.existsSync(out)) return out;
  const work = fs.mkdtempSync(path.join(dir, 'work-'));
  try {
    const root = path.join(work, 'root');
    const kx = path.join(work, 'kernel');
    fs.mkdirSync(root);
    fs.mkdirSync(kx);
    sh('dpkg-deb', ['-x', deb('busybox-static'), root]);
    sh('dpkg-deb', ['-x', deb(kernelPackage('linux-image-cloud-amd64')), kx]);
    const version = fs
      .readdirSync(path.join(kx, 'boot'))
      .find((f) => f.startsWith('vmlinuz-'))!
      .slice('vmlinuz-'.length);
    for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'boot', 'root']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.copyFileSync(path.join(kx, 'boot', `vmlinuz-${version}`), path.join(root, 'boot', `vmlinuz-${version}`));
    for (const a of ['sh', 'mount', 'umount', 'cat', 'echo', 'ls', 'sleep', 'poweroff', 'mkdir', 'insmod']) {
      fs.symlinkSync('busybox', path.join(root, 'bin', a));
    }
    fs.writeFileSync(path.join(root, 'etc', 'fstab'), '# UNCONFIGURED FSTAB\n');
    fs.writeFileSync(
      path.join(root, 'sbin', 'init'),
      `#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n/bin/busybox mount -t devtmpfs dev /dev\n/bin/busybox echo "${ROOTFS_MARKER} $(/bin/busybox cat /proc/cmdline) fstab=$(/bin/busybox grep -c UUID= /etc/fstab)" > /dev/console\n/bin/busybox poweroff -f\n`,
      { mode: 0o755 },
    );

    // The initramfs: busybox, the modules, an init that finds the root partition by trying each.
    const ird = path.join(work, 'initrd');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'mnt', 'lib/modules']) fs.mkdirSync(path.join(ird, d), { recursive: true });
    fs.copyFileSync(path.join(root, 'bin', 'busybox'), path.join(ird, 'bin', 'busybox'));
    fs.chmodSync(path.join(ird, 'bin', 'busybox'), 0o755);
    const mods: string[] = [];
    for (const m of MODULES) {
      const src = path.join(kx, 'lib', 'modules', version, 'kernel', m);
      if (!fs.existsSync(src)) continue;
      fs.copyFileSync(src, path.join(ird, 'lib', 'modules', path.basename(m)));
      mods.push(path.basename(m));
    }
    fs.writeFileSync(
      path.join(ird, 'init'),
      [
        '#!/bin/busybox sh',
        'B=/bin/busybox',
        '$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev',
        `for m in ${mods.join(' ')}; do $B insmod /lib/modules/$m 2>/dev/null; done`,
        'for i in $($B seq 1 100); do',
        '  for d in /dev/vd?[0-9] /dev/vd?[0-9][0-9] /dev/sd?[0-9]; do',
        '    [ -b "$d" ] || continue',
        '    if $B mount "$d" /mnt 2>/dev/null; then',
        '      [ -x /mnt/sbin/init ] && exec $B switch_root /mnt /sbin/init',
        '      $B umount /mnt',
        '    fi',
        '  done',
        '  $B sleep 0.2',
        'done',
        'echo "initramfs: no root file system found"; $B poweroff -f',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const list = sh('find', ['.', '-mindepth', '1'], ird);
    const cpio = execFileSync(path.join(root, 'bin', 'busybox'), ['cpio', '-o', '-H', 'newc'], { cwd: ird, input: list, maxBuffer: 1 << 28 });
    fs.writeFileSync(path.join(root, 'boot', `initrd.img-${version}`), execFileSync('gzip', ['-1'], { input: cpio, maxBuffer: 1 << 28 }));

    const tmp = `${out}.tmp-${process.pid}`;
    sh('tar', ['-c', '-z', '--numeric-owner', '--owner=0', '--group=0', '-f', tmp, '-C', root, '.']);
    fs.renameSync(tmp, out);
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
