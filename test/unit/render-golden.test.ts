import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import { GOLDEN_DIR, node, sampleEnv } from '../fixtures/render/sample.js';

/** The shipped profiles and templates, rendered for fixed nodes, must match the reviewed goldens byte for byte. */
describe('render: golden output of the shipped set', () => {
  const env = sampleEnv();
  let set: RenderSet;
  const compute = node({ attrs: { 'image.name': 'compute', rootpw_crypted: '$6$saltsalt$0123456789abcdefABCDEF' } });
  const login = node({ name: 'login-0-0' as NodeName, appliance: 'login', mac: '52:54:00:ab:cd:10' as Mac, ip: '10.1.1.2' as Ipv4, rank: 0 });
  const golden = (f: string) => fs.readFileSync(path.join(GOLDEN_DIR, f), 'utf8');

  before(() => {
    const r = loadRenderSet(PACKAGE_ROOT, env);
    expect(r.problems).to.deep.equal([]);
    set = r.set!;
  });

  it('kickstart for a compute node with an image', () => expect(set.kickstart(env, compute)).to.equal(golden('kickstart-compute.ks')));
  it('kickstart for a login node', () => expect(set.kickstart(env, login)).to.equal(golden('kickstart-login.ks')));
  for (const m of ['install', 'os', 'capture'] as const) {
    it(`pxelinux ${m}`, () => expect(set.pxelinux(env, compute, m)).to.equal(golden(`pxelinux-${m}.cfg`)));
  }
  for (const m of ['default', 'discover'] as const) {
    it(`pxelinux ${m} (unknown node)`, () => expect(set.pxelinux(env, null, m)).to.equal(golden(`pxelinux-${m}.cfg`)));
  }
  const TOKEN = 'T'.repeat(43);
  for (const m of ['install', 'os', 'capture'] as const) {
    it(`ipxe ${m}`, () => expect(set.ipxe(env, compute, m)).to.equal(golden(`ipxe-${m}.ipxe`)));
  }
  for (const m of ['install', 'capture'] as const) {
    it(`ipxe ${m} with the session token`, () => expect(set.ipxe(env, compute, m, TOKEN)).to.equal(golden(`ipxe-${m}-session.ipxe`)));
    it(`ipxe ${m} carries the same kernel arguments as pxelinux ${m}`, () => {
      const append = /\n {2}append (.*)\n/.exec(set.pxelinux(env, compute, m, TOKEN))![1]!;
      const kernel = /\nkernel (\S+) initrd=\S+ (.*) BOOTIF=01-\$\{netX\/mac:hexhyp\}\n/.exec(set.ipxe(env, compute, m, TOKEN))!;
      expect(kernel[1]).to.equal('http://10.1.1.1:8080/install/boot/kickswarm/vmlinuz');
      expect(kernel[2]).to.equal(append);
    });
  }
  it('ipxe discover (unknown node)', () => expect(set.ipxe(env, null, 'discover')).to.equal(golden('ipxe-discover.ipxe')));
  it('ipxe refuses modes it has no script for', () => {
    expect(() => set.ipxe(env, null, 'default')).to.throw(/unknown iPXE mode "default"/);
    expect(() => set.ipxe(env, null, 'install')).to.throw(/needs a node/);
  });
  it('dnsmasq config', () => expect(set.dhcp(env, 'dnsmasq', [compute, login])).to.equal(golden('dnsmasq.conf')));
  const ipxeEnv = sampleEnv({ pxe: { ...env.pxe, loader: 'ipxe', arm64Loader: 'arm64/snponly.efi' } });
  it('dnsmasq config with pxe.loader ipxe and an arm64 loader', () => expect(set.dhcp(ipxeEnv, 'dnsmasq', [compute])).to.equal(golden('dnsmasq-ipxe.conf')));
  it('ISC dhcpd config with pxe.loader ipxe and an arm64 loader', () => expect(set.dhcp(ipxeEnv, 'isc', [compute])).to.equal(golden('dhcpd-ipxe.conf')));
  it('ISC dhcpd config', () => expect(set.dhcp(env, 'isc', [compute, login])).to.equal(golden('dhcpd.conf')));
});
