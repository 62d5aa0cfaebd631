import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { findBootEntry, parseExtlinux, parseGrub, rootFromFstab } from '../../node-installer/install/bootcfg.js';
import { kickstartRebootMode } from '../../node-installer/install/finish.js';
import { plainLine } from '../../node-installer/log.js';
import { parseKickstart } from '../../protocol/kickstart.js';
import { writeInitrd } from '../../server/bootenv/cpio.js';
import { modinfoDepends, selectModules } from '../../server/bootenv/modules.js';
import { parseModuleList } from '../../server/cli/bootenv.js';
import { loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import { dataDirWith, node, removeDir, sampleEnv } from '../fixtures/render/sample.js';
import { tmpDir } from '../helpers/tmp.js';

const dirs: string[] = [];
function tmp(): string {
  const d = tmpDir('ksbootenv-');
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function write(root: string, rel: string, text: string | Buffer): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

describe('bootenv: what kexec boots (the installed boot loader config)', () => {
  it('takes the DEFAULT label of extlinux.conf, with initrd= inside APPEND taken out', () => {
    const e = parseExtlinux('DEFAULT b\nLABEL a\n KERNEL /boot/a\n APPEND root=/dev/x\nLABEL b\n  LINUX /boot/vmlinuz-6\n  APPEND initrd=/boot/initrd.img-6 root=UUID=1234 ro quiet\n');
    expect(e).to.deep.equal({ kernel: '/boot/vmlinuz-6', initrd: '/boot/initrd.img-6', append: 'root=UUID=1234 ro quiet' });
  });

  it('takes the first menuentry of grub.cfg', () => {
    const e = parseGrub("set default=0\nmenuentry 'Debian' {\n  linux /boot/vmlinuz-6 root=/dev/sda2 ro\n  initrd /boot/initrd.img-6\n}\nmenuentry 'old' {\n linux /boot/vmlinuz-5 root=/dev/sdb\n}\n");
    expect(e).to.deep.equal({ kernel: '/boot/vmlinuz-6', initrd: '/boot/initrd.img-6', append: 'root=/dev/sda2 ro' });
  });

  it("resolves the entry's files inside the installed root, never the installer's command line", () => {
    const root = tmp();
    write(root, 'boot/vmlinuz-6.1', 'k');
    write(root, 'boot/initrd.img-6.1', 'i');
    write(root, 'boot/extlinux/extlinux.conf', 'DEFAULT l\nLABEL l\n KERNEL /boot/vmlinuz-6.1\n INITRD /boot/initrd.img-6.1\n APPEND root=/dev/vda1 rw console=ttyS0\n');
    const e = findBootEntry(root)!;
    expect(e.kernel).to.equal(path.join(root, 'boot/vmlinuz-6.1'));
    expect(e.initrd).to.equal(path.join(root, 'boot/initrd.img-6.1'));
    expect(e.cmdline).to.equal('root=/dev/vda1 rw console=ttyS0');
    expect(e.cmdline).to.not.match(/ks=|kickswarm\./);
  });

  it('falls back to the newest kernel and root= from fstab; no kernel at all is undefined', () => {
    const root = tmp();
    expect(findBootEntry(root)).to.equal(undefined);
    write(root, 'boot/vmlinuz-5.10', 'k');
    write(root, 'boot/vmlinuz-6.1', 'k');
    write(root, 'etc/fstab', '# comment\nUUID=abcd /boot ext4 defaults 0 2\nLABEL=root / ext4 defaults 0 1\n');
    const e = findBootEntry(root)!;
    expect(e.kernel).to.equal(path.join(root, 'boot/vmlinuz-6.1'));
    expect(e.cmdline).to.equal('root=LABEL=root ro');
    expect(rootFromFstab('')).to.equal(undefined);
  });

  it('follows the kickstart: reboot --kexec, reboot, or no say', () => {
    expect(kickstartRebootMode(parseKickstart('text\nreboot --kexec\n'))).to.equal('kexec');
    expect(kickstartRebootMode(parseKickstart('text\nreboot\n'))).to.equal('reboot');
    expect(kickstartRebootMode(parseKickstart('text\n'))).to.equal(undefined);
  });
});

describe('bootenv: initrd archive and modules', () => {
  it('writes the same bytes for the same folder, whatever the mtimes, and busybox cpio reads it back', async function () {
    const a = tmp();
    write(a, 'init', '#!/bin/sh\necho hi\n');
    fs.chmodSync(path.join(a, 'init'), 0o755);
    write(a, 'etc/x/y', 'y');
    fs.symlinkSync('/bin/busybox', path.join(a, 'sh'));
    const out = tmp();
    await writeInitrd(a, path.join(out, '1.img'), 'gzip');
    fs.utimesSync(path.join(a, 'etc/x/y'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    await writeInitrd(a, path.join(out, '2.img'), 'gzip');
    expect(fs.readFileSync(path.join(out, '1.img')).equals(fs.readFileSync(path.join(out, '2.img')))).to.equal(true);
    let bb = '/bin/busybox';
    if (!fs.existsSync(bb)) bb = '/usr/bin/busybox';
    if (!fs.existsSync(bb)) return;
    const list = execFileSync('sh', ['-c', `zcat ${path.join(out, '1.img')} | ${bb} cpio -t 2>/dev/null`], { encoding: 'utf8' });
    expect(list.trim().split('\n')).to.deep.equal(['etc', 'etc/x', 'etc/x/y', 'init', 'sh']);
  });

  it('picks modules with their dependencies from modinfo, and refuses an unknown --modules-extra', () => {
    const m = tmp();
    const ko = (deps: string) => Buffer.concat([Buffer.from('\x7fELF....'), Buffer.from(`\0license=GPL\0depends=${deps}\0vermagic=6.1\0`)]);
    write(m, 'kernel/drivers/net/virtio_net.ko', ko('net_failover,virtio'));
    write(m, 'kernel/drivers/net/net_failover.ko', ko('failover'));
    write(m, 'kernel/net/core/failover.ko', ko(''));
    write(m, 'kernel/drivers/virtio/virtio.ko', ko(''));
    write(m, 'kernel/drivers/unused.ko', ko(''));
    write(m, 'modules.builtin', 'kernel/fs/ext4/ext4.ko\n');
    expect(modinfoDepends(path.join(m, 'kernel/drivers/net/virtio_net.ko'))).to.deep.equal(['net_failover', 'virtio']);
    const sel = selectModules(m, ['virtio_net', 'ext4', 'e1000'], []);
    expect(sel.files).to.deep.equal(['kernel/drivers/net/net_failover.ko', 'kernel/drivers/net/virtio_net.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/net/core/failover.ko']);
    expect(sel.builtin).to.deep.equal(['ext4']);
    expect(sel.missing).to.deep.equal(['e1000']);
    expect(() => selectModules(m, [], ['nosuch'])).to.throw(/--modules-extra nosuch/);
    expect(parseModuleList('a,b c')).to.deep.equal(['a', 'b', 'c']);
    expect(() => parseModuleList('../x')).to.throw(/not a module name/);
  });

  it('prints installer log lines as plain text for the console', () => {
    const line = plainLine(JSON.stringify({ level: 30, time: Date.UTC(2024, 0, 1, 12, 3, 4), app: 'kickswarm-install', state: 'post', msg: 'install state: post' }));
    expect(line).to.equal('12:03:04 info install state: post  state=post');
    expect(plainLine('not json\n')).to.equal('not json');
  });
});

describe('bootenv: pxe.bootOverHttp and the kexec attribute in the rendered text', () => {
  let dir: string;
  let set: RenderSet;
  before(() => {
    dir = dataDirWith({});
    const r = loadRenderSet(dir, sampleEnv());
    if (!r.set) throw new Error(JSON.stringify(r.problems));
    set = r.set;
  });
  after(() => removeDir(dir));

  it('names /install/boot/ URLs for kernel and initrd, and lpxelinux.0 as the BIOS boot file', () => {
    const env = sampleEnv({ pxe: { ...sampleEnv().pxe, bootOverHttp: true } });
    const cfg = set.pxelinux(env, node(), 'install');
    expect(cfg).to.match(/^ {2}kernel http:\/\/10\.1\.1\.1:8080\/install\/boot\/kickswarm\/vmlinuz$/m);
    expect(cfg).to.match(/^ {2}initrd http:\/\/10\.1\.1\.1:8080\/install\/boot\/kickswarm\/initrd\.img$/m);
    expect(set.dhcp(env, 'dnsmasq', [node()])).to.contain('dhcp-boot=tag:!efi64,tag:!efi64http,tag:!arm64,tag:!arm64http,lpxelinux.0,,10.1.1.1');
    const plain = set.pxelinux(sampleEnv(), node(), 'install');
    expect(plain).to.match(/^ {2}kernel kickswarm\/vmlinuz$/m);
    expect(set.dhcp(sampleEnv(), 'dnsmasq', [node()])).to.contain('dhcp-boot=tag:!efi64,tag:!efi64http,tag:!arm64,tag:!arm64http,pxelinux.0,,10.1.1.1');
  });

  it('ends the kickstart with reboot --kexec for attribute reboot=kexec only', () => {
    expect(set.kickstart(sampleEnv(), node({ attrs: { reboot: 'kexec' } }))).to.match(/^reboot --kexec$/m);
    expect(set.kickstart(sampleEnv(), node())).to.match(/^reboot$/m);
  });
});
