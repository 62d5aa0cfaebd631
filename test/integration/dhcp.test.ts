import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import { node, sampleEnv } from '../fixtures/render/sample.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

/**
 * The generated DHCP configs must pass the real servers' own syntax checks.
 * Needs Debian packages `dnsmasq` and `isc-dhcp-server`; a missing binary fails.
 */
function binary(name: string): string {
  for (const dir of ['/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error(`${name} not found: install it (apt-get install -y --no-install-recommends dnsmasq isc-dhcp-server)`);
}

describe("dhcp-config output passes the real DHCP servers' checks", () => {
  let set: RenderSet;
  let dir: string;
  const nodes = Array.from({ length: 5 }, (_, i) =>
    node({
      name: `compute-0-${i}` as NodeName,
      mac: `52:54:00:12:34:${(0x10 + i).toString(16)}` as Mac,
      ip: `10.1.1.${20 + i}` as Ipv4,
      rank: i,
    }),
  );
  const envs = {
    full: sampleEnv(),
    minimal: sampleEnv({ dhcp: { netmask: '255.255.255.0', dnsServers: [], domain: 'local', leaseSeconds: 86400 } }),
    cidr: sampleEnv({ dhcp: { subnet: '10.1.0.0/16', netmask: '255.255.255.0', dnsServers: ['10.1.0.1'], domain: 'hpc.example.org', leaseSeconds: 600 } }),
    ipxe: sampleEnv({ pxe: { ...sampleEnv().pxe, loader: 'ipxe' } }),
    'ipxe+arm64': sampleEnv({ pxe: { ...sampleEnv().pxe, loader: 'ipxe', arm64Loader: 'arm64/snponly.efi' } }),
    'pxelinux+arm64': sampleEnv({ pxe: { ...sampleEnv().pxe, arm64Loader: 'arm64/grubnetaa64.efi' } }),
  };

  before(() => {
    const r = loadRenderSet(PACKAGE_ROOT, sampleEnv());
    expect(r.problems).to.deep.equal([]);
    set = r.set!;
    dir = tmpDir('kickswarm-dhcp-');
  });
  after(cleanupTmpDirs);

  for (const [label, env] of Object.entries(envs)) {
    it(`dnsmasq --test accepts the ${label} config`, () => {
      const file = path.join(dir, `dnsmasq-${label}.conf`);
      fs.writeFileSync(file, set.dhcp(env, 'dnsmasq', nodes));
      const r = spawnSync(binary('dnsmasq'), ['--test', `--conf-file=${file}`], { encoding: 'utf8' });
      expect(r.error, String(r.error)).to.equal(undefined);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr + r.stdout).to.match(/syntax check OK/);
    });

    it(`dhcpd -t accepts the ${label} config`, () => {
      const file = path.join(dir, `dhcpd-${label}.conf`);
      fs.writeFileSync(file, set.dhcp(env, 'isc', nodes));
      const r = spawnSync(binary('dhcpd'), ['-t', '-4', '-cf', file], { encoding: 'utf8' });
      expect(r.error, String(r.error)).to.equal(undefined);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).not.to.match(/WARNING/);
    });
  }

  it('the checks can fail: a broken config is refused by both', () => {
    const bad = path.join(dir, 'bad.conf');
    fs.writeFileSync(bad, 'dhcp-range=10.1.1.0,nonsense,,\n');
    expect(spawnSync(binary('dnsmasq'), ['--test', `--conf-file=${bad}`]).status).not.to.equal(0);
    fs.writeFileSync(bad, 'subnet 10.1.1.0 netmask 255.255.255.0 {\n  next-server ;\n');
    expect(spawnSync(binary('dhcpd'), ['-t', '-4', '-cf', bad]).status).not.to.equal(0);
  });
});
