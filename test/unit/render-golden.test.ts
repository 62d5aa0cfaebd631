import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import { GOLDEN_DIR, node, sampleEnv } from '../fixtures/render/sample.js';

/**
 * The shipped profiles and templates, rendered for fixed nodes, must match the
 * reviewed goldens byte for byte. After a deliberate template change,
 * `npm run test:golden:update` rewrites the goldens from the current output;
 * review the diff before committing it.
 */
const UPDATE = process.env.UPDATE_GOLDEN === '1';
describe('render: golden output of the shipped set', () => {
  const env = sampleEnv();
  let set: RenderSet;
  const compute = node({ attrs: { 'image.name': 'compute', rootpw_crypted: '$6$saltsalt$0123456789abcdefABCDEF' } });
  const login = node({ name: 'login-0-0' as NodeName, appliance: 'login', mac: '52:54:00:ab:cd:10' as Mac, ip: '10.1.1.2' as Ipv4, rank: 0 });
  /** Compares `actual` with golden file `f` (or, with UPDATE_GOLDEN=1, writes it there). */
  const matches = (actual: string, f: string) => {
    if (UPDATE) fs.writeFileSync(path.join(GOLDEN_DIR, f), actual);
    expect(actual).to.equal(fs.readFileSync(path.join(GOLDEN_DIR, f), 'utf8'));
  };

  before(() => {
    const r = loadRenderSet(PACKAGE_ROOT, env);
    expect(r.problems).to.deep.equal([]);
    set = r.set!;
  });

  it('kickstart for a compute node with an image', () => matches(set.kickstart(env, compute), 'kickstart-compute.ks'));
  it('kickstart for a login node', () => matches(set.kickstart(env, login), 'kickstart-login.ks'));
  for (const m of ['install', 'os', 'capture'] as const) {
    it(`pxelinux ${m}`, () => matches(set.pxelinux(env, compute, m), `pxelinux-${m}.cfg`));
  }
  for (const m of ['default', 'discover'] as const) {
    it(`pxelinux ${m} (unknown node)`, () => matches(set.pxelinux(env, null, m), `pxelinux-${m}.cfg`));
  }
  const TOKEN = 'T'.repeat(43);
  for (const m of ['install', 'os', 'capture'] as const) {
    it(`ipxe ${m}`, () => matches(set.ipxe(env, compute, m), `ipxe-${m}.ipxe`));
  }
  for (const m of ['install', 'capture'] as const) {
    it(`ipxe ${m} with the session token`, () => matches(set.ipxe(env, compute, m, TOKEN), `ipxe-${m}-session.ipxe`));
    it(`ipxe ${m} carries the same kernel arguments as pxelinux ${m}`, () => {
      const append = /\n {2}append (.*)\n/.exec(set.pxelinux(env, compute, m, TOKEN))![1]!;
      const kernel = /\nkernel (\S+) initrd=\S+ (.*) BOOTIF=01-\$\{netX\/mac:hexhyp\}\n/.exec(set.ipxe(env, compute, m, TOKEN))!;
      expect(kernel[1]).to.equal('http://10.1.1.1:8080/install/boot/kickswarm/vmlinuz');
      expect(kernel[2]).to.equal(append);
    });
  }
  it('ipxe discover (unknown node)', () => matches(set.ipxe(env, null, 'discover'), 'ipxe-discover.ipxe'));
  it('ipxe refuses modes it has no script for', () => {
    expect(() => set.ipxe(env, null, 'default')).to.throw(/unknown iPXE mode "default"/);
    expect(() => set.ipxe(env, null, 'install')).to.throw(/needs a node/);
  });
  it('dnsmasq config', () => matches(set.dhcp(env, 'dnsmasq', [compute, login]), 'dnsmasq.conf'));
  const ipxeEnv = sampleEnv({ pxe: { ...env.pxe, loader: 'ipxe', arm64Loader: 'arm64/snponly.efi' } });
  it('dnsmasq config with pxe.loader ipxe and an arm64 loader', () => matches(set.dhcp(ipxeEnv, 'dnsmasq', [compute]), 'dnsmasq-ipxe.conf'));
  it('ISC dhcpd config with pxe.loader ipxe and an arm64 loader', () => matches(set.dhcp(ipxeEnv, 'isc', [compute]), 'dhcpd-ipxe.conf'));
  it('ISC dhcpd config', () => matches(set.dhcp(env, 'isc', [compute, login]), 'dhcpd.conf'));
});
