/**
 * iPXE and UEFI on real (virtual) machines, in one lab so both run at once: a
 * BIOS VM (SeaBIOS and QEMU's iPXE NIC ROM, which already identifies itself
 * as iPXE, so DHCP hands it boot.ipxe at once) and a UEFI VM (OVMF with no
 * NIC ROM: the firmware's own PXE loads snponly.efi from kickswarm's TFTP,
 * whose DHCP request then gets boot.ipxe). Both load the installer kernel and
 * initrd over HTTP, install a GPT test image (ESP with systemd-boot, BIOS-bootable
 * root) through the swarm, flip to `os` and reboot through the firmware: the
 * BIOS VM PXE-boots into the `os` script (sanboot of the first disk), the
 * UEFI VM goes straight to its disk through the BootNext the installer set.
 * Each prints its own node name from the installed system. Root, QEMU, OVMF,
 * dnsmasq and the image build tools are needed (.ci/run installs them). How
 * long it takes is measured by `npm run bench:vm -- --loader ipxe`.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { skipBecause } from '../helpers/skip.js';
import { BOOTED_MARKER } from '../helpers/vm-image.js';
import { hasCommand, VM_CACHE, VmLab } from '../helpers/vm-lab.js';
import { OVMF_CODE, OVMF_VARS } from '../helpers/vm.js';
import { tmpDir } from '../helpers/tmp.js';

describe('VMs install themselves through iPXE (QEMU: BIOS with the NIC ROM, UEFI with OVMF and snponly.efi)', function () {
  this.timeout(60 * 60_000);
  let lab: VmLab | undefined;

  before(function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'needs root (namespaces, taps, loop devices, TFTP port 69)');
    for (const c of ['qemu-system-x86_64', 'dnsmasq', 'extlinux', 'sgdisk', 'mkfs.vfat', 'mcopy', 'mke2fs', 'apt-get', 'dpkg-deb', 'losetup']) {
      if (!hasCommand(c)) skipBecause(this, `${c} is not installed (.ci/run installs it)`);
    }
    for (const f of [OVMF_CODE, OVMF_VARS, '/usr/lib/systemd/boot/efi/systemd-bootx64.efi', '/usr/lib/syslinux/mbr/gptmbr.bin']) {
      if (!fs.existsSync(f)) skipBecause(this, `${f} is missing (.ci/run installs ovmf, systemd-boot-efi, syslinux-common)`);
    }
    if (!fs.existsSync('/dev/net/tun')) skipBecause(this, 'no /dev/net/tun for QEMU taps');
  });

  afterEach(async function () {
    if (!lab) return;
    const failed = this.currentTest?.state === 'failed';
    if (failed) {
      for (const n of lab.nodes) process.stderr.write(`--- serial console of ${n.name} (${n.firmware}, last 3000 bytes) ---\n${lab.serial(n).slice(-3000)}\n`);
    }
    await lab.close(failed && process.env.KICKSWARM_KEEP_VM_LAB === '1');
    lab = undefined;
  });

  it('a BIOS VM and a UEFI VM boot boot.ipxe, install through the swarm, and boot their own disks through the firmware', async () => {
    const dir = tmpDir('ksvm-ipxe-');
    lab = new VmLab({
      nodes: 2,
      cacheDir: VM_CACHE,
      dir,
      firmware: 'bios',
      firmwareOf: (i) => (i === 0 ? 'bios' : 'uefi'),
      loader: 'ipxe',
      disk: 'gpt',
      method: 'torrent',
      bootOverHttp: false,
      memMiB: 1024,
      kexec: () => false,
      log: () => undefined,
    });
    await lab.start();

    await lab.reinstallAndBoot();

    const lines = lab.frontendLines();
    const status = JSON.parse(lab.cli(['status', '--json'])) as { nodes: { name: string; state: string; bootAction: string }[] };
    let peers = 0;
    for (const n of lab.nodes) {
      const serial = lab.serial(n);
      const show = lab.cli(['node', 'show', n.name]);
      const tftp = (file: string) => lines.some((x) => x.msg === 'serving static file' && x.file === file && x.peer?.startsWith(`${n.ip}:`));
      const http = (url: string) => lines.some((x) => x.url === url && x.ip === n.ip && x.status === 200);
      // Booted its own disk, into which %post wrote its name.
      expect(serial, `${n.name} prints its own name`).to.match(new RegExp(`${BOOTED_MARKER} hostname=${n.name} cmdline=`));
      // The script from the same decision as PXELINUX, with the session token; kernel and initrd over HTTP.
      expect(show).to.contain('served boot.ipxe (install) with its session token');
      expect(http('/install/boot/kickswarm/vmlinuz'), `${n.name} fetched the kernel over HTTP`).to.equal(true);
      expect(http('/install/boot/kickswarm/initrd.img'), `${n.name} fetched the initrd over HTTP`).to.equal(true);
      expect(tftp('pxelinux.0') || tftp('kickswarm/vmlinuz'), `${n.name} used no PXELINUX and no TFTP kernel`).to.equal(false);
      expect(
        lines.some((x) => x.url?.startsWith('/install/sbin/kickstart.cgi') && x.ip === n.ip && x.status === 200),
        `${n.name} fetched its kickstart`,
      ).to.equal(true);
      expect(serial).to.contain('install state: done');
      expect(serial).to.contain('rebooting into the installed system');
      const m = /(\d+) bytes from peers/.exec(serial);
      peers += m ? Number(m[1]) : 0;
      if (n.firmware === 'bios') {
        // QEMU's NIC ROM is iPXE: DHCP hands it the script at once; after the install, the os script boots the disk (extlinux).
        expect(show).to.contain('served boot.ipxe (os)');
        expect(serial).to.match(new RegExp(`${BOOTED_MARKER} hostname=${n.name} cmdline=BOOT_IMAGE=`));
      } else {
        // OVMF's own PXE fetched the first stage from kickswarm's TFTP; after the install BootNext took it to the disk (systemd-boot), not the network.
        expect(tftp('snponly.efi'), `${n.name} fetched snponly.efi over TFTP`).to.equal(true);
        expect(serial).to.contain('UEFI: BootNext set to the installed disk');
        expect(show).to.not.contain('served boot.ipxe (os)');
        expect(serial).to.match(new RegExp(`${BOOTED_MARKER} hostname=${n.name} cmdline=initrd=\\\\initrd\\.img`));
      }
    }
    for (const n of lab.nodes) {
      const row = status.nodes.find((r) => r.name === n.name);
      expect(row, `${n.name} in kickswarm status`).to.deep.include({ state: 'done', bootAction: 'os' });
    }
    expect(peers, 'bytes the nodes got from each other').to.be.greaterThan(0);
  });
});
