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
  it('dnsmasq config', () => expect(set.dhcp(env, 'dnsmasq', [compute, login])).to.equal(golden('dnsmasq.conf')));
  it('ISC dhcpd config', () => expect(set.dhcp(env, 'isc', [compute, login])).to.equal(golden('dhcpd.conf')));
});
