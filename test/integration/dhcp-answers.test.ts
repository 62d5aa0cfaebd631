/**
 * What the generated DHCP configs really answer, per client architecture
 * (option 93) and for a client that already is iPXE (user-class `iPXE`):
 * dnsmasq and ISC dhcpd run in a network namespace with `dhcp-config`'s text,
 * and a DHCP client in a second namespace (test/helpers/dhcp-probe.mjs) sends
 * DISCOVERs the way PXE firmware, UEFI HTTP boot and iPXE do. Root,
 * dnsmasq and dhcpd are needed.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import type { RenderEnv } from '../../server/render/types.js';
import { REPO } from '../helpers/cli.js';
import { skipBecause } from '../helpers/skip.js';
import { node, sampleEnv } from '../fixtures/render/sample.js';
import { tmpDir } from '../helpers/tmp.js';

const SRV = `ksids${process.pid}`;
const CLI = `ksidc${process.pid}`;
const MAC = '52:54:00:99:00:01';
const FE = 'http://10.99.0.1:8080';

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const sh = (...a: string[]) => execFileSync(a[0]!, a.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

interface Offer {
  file?: string;
  bootfile?: string | null;
  vendorClass?: string | null;
  timeout?: boolean;
}

function probe(arch: number, extra: { vendorClass?: string; userClass?: string } = {}): Offer {
  const vendorClass = extra.vendorClass ?? `${arch === 16 || arch === 19 ? 'HTTPClient' : 'PXEClient'}:Arch:${String(arch).padStart(5, '0')}:UNDI:003016`;
  const out = sh(
    'ip',
    'netns',
    'exec',
    CLI,
    process.execPath,
    path.join(REPO, 'test/helpers/dhcp-probe.mjs'),
    JSON.stringify({ mac: MAC, arch, vendorClass, ...(extra.userClass ? { userClass: extra.userClass } : {}) }),
  );
  return JSON.parse(out) as Offer;
}

const bootFile = (o: Offer) => (o.timeout ? '(no offer)' : o.bootfile || o.file || '(none)');

describe('dhcp-config: the boot file real DHCP servers hand out, by option 93 and user class', function () {
  this.timeout(120_000);
  let set: RenderSet;
  let dir: string;
  let server: ChildProcess | undefined;
  const n = node({ name: 'compute-0-1' as NodeName, mac: MAC as Mac, ip: '10.99.0.20' as Ipv4 });
  const envFor = (pxe: Partial<RenderEnv['pxe']>): RenderEnv =>
    sampleEnv({
      frontendUrl: FE,
      tftpServer: '10.99.0.1',
      pxe: { ...sampleEnv().pxe, ...pxe },
      dhcp: { subnet: '10.99.0.0/24', netmask: '255.255.255.0', dnsServers: [], domain: 'test', leaseSeconds: 600 },
    });

  before(function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'needs root (network namespaces, DHCP ports)');
    for (const c of ['dnsmasq', 'dhcpd', 'ip']) if (!have(c) && !fs.existsSync(`/usr/sbin/${c}`)) skipBecause(this, `${c} is not installed (.ci/run installs it)`);
    const r = loadRenderSet(PACKAGE_ROOT, sampleEnv());
    expect(r.problems).to.deep.equal([]);
    set = r.set!;
    dir = tmpDir('kickswarm-dhcp-answers-');
    sh('ip', 'netns', 'add', SRV);
    sh('ip', 'netns', 'add', CLI);
    sh('ip', 'link', 'add', 'ksidv0', 'netns', SRV, 'type', 'veth', 'peer', 'name', 'ksidv1', 'netns', CLI);
    sh('ip', 'netns', 'exec', SRV, 'ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'ksidv0');
    sh('ip', 'netns', 'exec', CLI, 'ip', 'addr', 'add', '10.99.0.250/24', 'dev', 'ksidv1');
    for (const [ns, dev] of [
      [SRV, 'ksidv0'],
      [CLI, 'ksidv1'],
    ] as const) {
      sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', dev, 'up');
    }
    // The client's broadcasts (255.255.255.255) leave through the link.
    sh('ip', 'netns', 'exec', CLI, 'ip', 'route', 'add', 'default', 'dev', 'ksidv1');
  });
  afterEach(async () => {
    if (!server) return;
    const s = server;
    server = undefined;
    s.kill('SIGTERM');
    if (s.exitCode === null && s.signalCode === null) await new Promise((r) => s.once('exit', r));
  });
  after(() => {
    for (const ns of [SRV, CLI]) spawnSync('ip', ['netns', 'del', ns]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(format: 'dnsmasq' | 'isc', env: RenderEnv): Promise<void> {
    const conf = path.join(dir, `${format}.conf`);
    fs.writeFileSync(conf, set.dhcp(env, format, [n]));
    const log = path.join(dir, `${format}.log`);
    const fd = fs.openSync(log, 'w');
    const args =
      format === 'dnsmasq'
        ? [
            'dnsmasq',
            '--keep-in-foreground',
            '--no-daemon',
            `--conf-file=${conf}`,
            '--port=0',
            '--no-resolv',
            '--no-hosts',
            '--interface=ksidv0',
            '--bind-interfaces',
            '--log-dhcp',
            '--log-facility=-',
            `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
            `--pid-file=${path.join(dir, 'dnsmasq.pid')}`,
          ]
        : ['dhcpd', '-f', '-4', '-cf', conf, '-lf', path.join(dir, 'dhcpd.leases'), '-pf', path.join(dir, 'dhcpd.pid'), 'ksidv0'];
    fs.writeFileSync(path.join(dir, 'dhcpd.leases'), '');
    server = spawn('ip', ['netns', 'exec', SRV, ...args], { stdio: ['ignore', fd, fd] });
    const ready = format === 'dnsmasq' ? /DHCP, sockets bound/ : /Sending on/;
    const end = Date.now() + 20_000;
    while (!ready.test(fs.readFileSync(log, 'utf8'))) {
      if (Date.now() > end || server.exitCode !== null) throw new Error(`${format} did not start: ${fs.readFileSync(log, 'utf8').slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  for (const format of ['dnsmasq', 'isc'] as const) {
    it(`${format}, pxe.loader ipxe with an arm64 loader: each architecture its first stage, iPXE its script`, async () => {
      await start(format, envFor({ loader: 'ipxe', arm64Loader: 'arm64/snponly.efi' }));
      expect(bootFile(probe(0))).to.equal('undionly.kpxe');
      expect(bootFile(probe(7))).to.equal('snponly.efi');
      expect(bootFile(probe(9))).to.equal('snponly.efi');
      const http = probe(16);
      expect(bootFile(http)).to.equal(`${FE}/install/boot/ipxe.efi`);
      expect(http.vendorClass).to.equal('HTTPClient');
      expect(bootFile(probe(11))).to.equal('arm64/snponly.efi');
      expect(bootFile(probe(19))).to.equal(`${FE}/install/boot/arm64/snponly.efi`);
      const script = `${FE}/install/sbin/boot.ipxe?mac=\${netX/mac}`;
      expect(bootFile(probe(0, { userClass: 'iPXE' }))).to.equal(script);
      expect(bootFile(probe(7, { userClass: 'iPXE' }))).to.equal(script);
    });

    it(`${format}, pxe.loader pxelinux without an arm64 loader: PXELINUX first stages, arm64 gets nothing`, async () => {
      await start(format, envFor({}));
      expect(bootFile(probe(0))).to.equal('pxelinux.0');
      expect(bootFile(probe(7))).to.equal('syslinux.efi');
      expect(bootFile(probe(9))).to.equal('syslinux.efi');
      expect(bootFile(probe(16))).to.equal(`${FE}/install/boot/ipxe.efi`);
      expect(bootFile(probe(11))).to.equal('(none)');
      expect(bootFile(probe(19))).to.equal('(none)');
      // An iPXE ROM keeps getting PXELINUX: the iPXE rule is only there with pxe.loader ipxe.
      expect(bootFile(probe(0, { userClass: 'iPXE' }))).to.equal('pxelinux.0');
    });
  }
});
