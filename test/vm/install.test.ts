/**
 * The whole product on real (virtual) machines: two QEMU VMs with empty disks
 * PXE-boot from kickswarm (dnsmasq with the generated config, TFTP on port 69,
 * the boot environment `kickswarm bootenv build` made), install the test image
 * through the swarm, flip to `os`, and boot their installed disks: one with
 * kexec, one through a firmware reboot, PXE again and `localboot`. Root, QEMU
 * and dnsmasq are needed; the packages come from the machine's apt sources
 * (cached under /var/cache/kickswarm-test). How long it takes is measured by
 * `npm run bench:vm`, not asserted here; the timeouts are generous so a busy
 * machine fails only when something is really stuck.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { skipBecause } from '../helpers/skip.js';
import { BOOTED_MARKER } from '../helpers/vm-image.js';
import { hasCommand, VM_CACHE, VmLab } from '../helpers/vm-lab.js';
import { tmpDir } from '../helpers/tmp.js';

describe('VMs install themselves from kickswarm (QEMU, PXE, swarm, kexec and firmware reboot)', function () {
  this.timeout(60 * 60_000);
  let lab: VmLab | undefined;

  before(function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'needs root (namespaces, taps, loop devices, TFTP port 69)');
    for (const c of ['qemu-system-x86_64', 'dnsmasq', 'extlinux', 'sfdisk', 'mke2fs', 'apt-get', 'dpkg-deb', 'losetup']) {
      if (!hasCommand(c)) skipBecause(this, `${c} is not installed (.ci/run installs it)`);
    }
    if (!fs.existsSync('/usr/lib/EXTLINUX/mbr.bin')) skipBecause(this, 'extlinux mbr.bin missing (apt-get install extlinux)');
    if (!fs.existsSync('/dev/net/tun')) skipBecause(this, 'no /dev/net/tun for QEMU taps');
  });

  afterEach(async function () {
    if (!lab) return;
    const failed = this.currentTest?.state === 'failed';
    if (failed) {
      for (const n of lab.nodes) process.stderr.write(`--- serial console of ${n.name} (last 3000 bytes) ---\n${lab.serial(n).slice(-3000)}\n`);
    }
    await lab.close(failed && process.env.KICKSWARM_KEEP_VM_LAB === '1');
    lab = undefined;
  });

  it('two VMs PXE-boot, install through the swarm, and boot their own disks (one by kexec, one by firmware reboot)', async () => {
    const dir = tmpDir('ksvm-lab-');
    lab = new VmLab({ nodes: 2, cacheDir: VM_CACHE, dir, firmware: 'bios', loader: 'pxelinux', method: 'torrent', bootOverHttp: false, memMiB: 1024, kexec: (i) => i === 0, log: () => undefined });
    await lab.start();

    await lab.reinstallAndBoot();

    const lines = lab.frontendLines();
    const status = JSON.parse(lab.cli(['status', '--json'])) as { nodes: { name: string; state: string; bootAction: string }[] };
    let peers = 0;
    for (const [i, n] of lab.nodes.entries()) {
      const serial = lab.serial(n);
      // Booted its own disk, which %post wrote its name into.
      expect(serial).to.match(new RegExp(`${BOOTED_MARKER} hostname=${n.name} cmdline=.*root=/dev/vda1`));
      // DHCP, loader, its own config, kernel and initrd.
      const tftp = (file: string) => lines.some((x) => x.msg === 'serving static file' && x.file === file && x.peer?.startsWith(`${n.ip}:`));
      expect(tftp('pxelinux.0'), `${n.name} fetched pxelinux.0`).to.equal(true);
      expect(tftp('kickswarm/vmlinuz'), `${n.name} fetched the kernel`).to.equal(true);
      expect(tftp('kickswarm/initrd.img'), `${n.name} fetched the initrd`).to.equal(true);
      const show = lab.cli(['node', 'show', n.name]);
      const macName = `01-${n.mac.replace(/:/g, '-')}`;
      expect(show).to.contain(`served pxelinux.cfg/${macName} (install)`);
      expect(
        lines.some((x) => x.url?.startsWith('/install/sbin/kickstart.cgi') && x.ip === n.ip && x.status === 200),
        `${n.name} fetched its kickstart`,
      ).to.equal(true);
      expect(serial).to.contain('install state: post');
      expect(serial).to.contain('install state: done');
      // The image went onto the real disk around the page cache (O_DIRECT).
      expect(serial).to.match(/target written\s+target=\/dev\/vda directMiB=[1-9]/);
      const m = /(\d+) bytes from peers/.exec(serial);
      peers += m ? Number(m[1]) : 0;
      // Each pass through the firmware PXE-boots, and each PXE boot fetches the loader once.
      const pxeBoots = lines.filter((x) => x.msg === 'serving static file' && x.file === 'pxelinux.0' && x.peer?.startsWith(`${n.ip}:`)).length;
      if (i === 0) {
        // kexec: straight from the installer into the installed kernel, no firmware in between.
        expect(serial).to.contain('kexec into the installed system');
        expect(pxeBoots, `${n.name} PXE-booted once`).to.equal(1);
        expect(show).to.not.contain(`served pxelinux.cfg/${macName} (os)`);
      } else {
        // Firmware reboot: PXE again, `localboot`, then the disk.
        expect(serial).to.contain('rebooting into the installed system');
        expect(pxeBoots, `${n.name} PXE-booted twice`).to.equal(2);
        expect(show).to.contain(`served pxelinux.cfg/${macName} (os)`);
      }
    }
    for (const n of lab.nodes) {
      const row = status.nodes.find((r) => r.name === n.name);
      expect(row, `${n.name} in kickswarm status`).to.deep.include({ state: 'done', bootAction: 'os' });
    }
    expect(peers, 'bytes the nodes got from each other').to.be.greaterThan(0);
  });
});
