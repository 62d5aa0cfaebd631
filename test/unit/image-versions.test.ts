import { expect } from 'chai';
import { InvalidInputError } from '../../protocol/errors.js';
import { parseKickstart } from '../../protocol/kickstart.js';
import { parseImageRef } from '../../protocol/node.js';
import { parseSize, planDisk } from '../../server/images/build/layout.js';
import { installedWith, usersOf, type ImageUsageFacts } from '../../server/images/usage.js';
import { buildContext } from '../../server/render/context.js';
import type { RenderEnv } from '../../server/render/types.js';

describe('image versions', () => {
  it('parses NAME and NAME@N, and nothing else', () => {
    expect(parseImageRef('compute')).to.deep.equal({ name: 'compute', ref: 'compute' });
    expect(parseImageRef(' compute@12 ')).to.deep.equal({ name: 'compute', version: 12, ref: 'compute@12' });
    for (const bad of ['compute@', 'compute@0', 'compute@01', 'compute@x', 'compute@1@2', '@1', '../x@1', 'x.json@1', 'compute@1000000']) {
      expect(() => parseImageRef(bad), bad).to.throw(InvalidInputError);
    }
  });

  it('kickstarts may name an exact version', () => {
    const sha = 'cd'.repeat(32);
    const ks = parseKickstart(`%addon org_kickswarm\nimage --name=compute@3 --sha256=${sha} --target=/dev/vda\n%end\n`);
    expect(ks.image).to.include({ name: 'compute@3', sha256: sha });
    expect(() => parseKickstart('%addon org_kickswarm\nimage --name=compute@0 --target=/dev/vda\n%end\n')).to.throw(/valid --name/);
  });

  it('renders the exact version the store resolves', () => {
    const env = {
      frontendUrl: 'http://10.1.1.1:8080',
      tftpServer: '10.1.1.1',
      pxe: {},
      dhcp: { netmask: '255.255.0.0', dnsServers: [], domain: 'local', leaseSeconds: 3600 },
      globals: { 'image.name': 'compute' },
      image: (ref: string) => (ref === 'compute' ? { name: 'compute@2', version: 2, sha256: 'ef'.repeat(32), rawSize: 42 } : undefined),
    } as unknown as RenderEnv;
    const ctx = buildContext(env, null, null, { resolveImage: true });
    expect(ctx.image).to.include({ name: 'compute@2', version: 2, size: 42 });
  });

  it('works out who uses which version', () => {
    const facts: ImageUsageFacts = {
      wants: [
        { who: 'profile compute', ref: 'compute' },
        { who: 'node c0-1', ref: 'compute@1' },
        { who: 'node gpu-0', ref: 'gpu' },
      ],
      installing: [{ node: 'c0-2', ref: 'compute@2' }],
      installed: [
        { node: 'c0-1', ref: 'compute@1', sha256: 'a', at: 't' },
        { node: 'c0-3', ref: 'compute@3', sha256: 'b', at: 't' },
      ],
    };
    const current = (n: string) => (n === 'compute' ? 3 : 1);
    const ref = (s: string) => parseImageRef(s);
    expect(usersOf(facts, ref('compute@1'), current)).to.deep.equal(['node c0-1']);
    expect(usersOf(facts, ref('compute@2'), current)).to.deep.equal(['node c0-2 (installing compute@2)']);
    expect(usersOf(facts, ref('compute@3'), current)).to.deep.equal(['profile compute (compute)']);
    expect(usersOf(facts, ref('compute'), current)).to.have.length(3);
    expect(usersOf(facts, ref('other'), current)).to.deep.equal([]);
    expect(installedWith(facts, 'compute@3')).to.deep.equal(['c0-3']);
  });
});

describe('image build layout', () => {
  const ids = () => {
    let n = 0;
    return { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, volumeId: () => 'abcd1234' };
  };
  it('lays out ESP + root for both (root legacy-bootable), ESP + root for uefi, boot + root for bios with xfs', () => {
    const both = planDisk({ sizeBytes: parseSize('1G'), firmware: 'both', fs: 'ext4', contentBytes: 50 << 20, ...ids() });
    expect(both.partitions.map((p) => [p.role, p.fs, p.start, p.legacyBoot])).to.deep.equal([
      ['esp', 'vfat', 2048, false],
      ['root', 'ext4', 526336, true],
    ]);
    expect(both.partitions[1]!.end).to.equal(2097152 - 2048 - 1);
    const uefi = planDisk({ sizeBytes: parseSize('1G'), firmware: 'uefi', fs: 'xfs', contentBytes: 0, ...ids() });
    expect(uefi.partitions.map((p) => [p.role, p.fs, p.legacyBoot])).to.deep.equal([
      ['esp', 'vfat', false],
      ['root', 'xfs', false],
    ]);
    const bios = planDisk({ sizeBytes: parseSize('2G'), firmware: 'bios', fs: 'xfs', contentBytes: 0, ...ids() });
    expect(bios.partitions.map((p) => [p.role, p.fs, p.mountPoint, p.legacyBoot])).to.deep.equal([
      ['boot', 'ext4', '/boot', true],
      ['root', 'xfs', '/', false],
    ]);
  });

  it('refuses a disk too small for the content, saying what would do', () => {
    expect(() => planDisk({ sizeBytes: parseSize('512M'), firmware: 'both', fs: 'ext4', contentBytes: 400 << 20, ...ids() })).to.throw(
      InvalidInputError,
      /size too small: .*needs about 505 MiB for 400 MiB of files, 254 MiB would be left; use --size 763M or more/,
    );
    expect(parseSize('1.5G')).to.equal(1536 << 20);
    expect(() => parseSize('lots')).to.throw(InvalidInputError);
  });
});
