import fs from 'node:fs';
import { expect } from 'chai';
import { InvalidInputError, NotFoundError, TemplateError } from '../../protocol/errors.js';
import { checkKickstartStructure, loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import { dataDirWith, node, removeDir, sampleEnv } from '../fixtures/render/sample.js';

const dirs: string[] = [];
function load(files: Record<string, string>) {
  const dir = dataDirWith(files);
  dirs.push(dir);
  return loadRenderSet(dir, sampleEnv());
}
function good(files: Record<string, string> = {}): RenderSet {
  const r = load(files);
  expect(r.problems).to.deep.equal([]);
  return r.set!;
}
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('render: templates', () => {
  after(() => dirs.forEach(removeDir));

  it('rejects a set whose kickstart uses a missing variable, naming file and line (caught at load, not at boot)', () => {
    const r = load({ 'templates/kickstart.hbs': 'text\nlang en_US\n{{attrs.no_such_thing}}\n' });
    expect(r.set).to.equal(null);
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({ file: 'templates/kickstart.hbs', line: 3 });
    expect(r.problems[0]!.message).to.match(/"no_such_thing" is not defined/);
  });

  it('names the snippet file and its line when a snippet fails', () => {
    const r = load({ 'templates/snippets/hostname.hbs': 'echo ok\necho {{node.nmae}}\n' });
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({ file: 'templates/snippets/hostname.hbs', line: 2 });
  });

  it('reports parse errors with file and line', () => {
    const r = load({ 'templates/pxelinux/os.hbs': 'default os\n{{#if node}}\nlabel os\n' });
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({ file: 'templates/pxelinux/os.hbs' });
    expect(r.problems[0]!.line).to.be.a('number');
    expect(r.problems[0]!.message).to.match(/^parse error/);
  });

  it('reports a missing required template', () => {
    const dir = dataDirWith({});
    dirs.push(dir);
    fs.rmSync(`${dir}/templates/pxelinux/capture.hbs`);
    const r = loadRenderSet(dir, sampleEnv());
    expect(r.problems).to.deep.equal([{ file: 'templates/pxelinux/capture.hbs', message: 'required template is missing' }]);
  });

  it('emits rootpw --iscrypted only with the attribute, else rootpw --lock; never a plaintext password', () => {
    const set = good();
    const locked = set.kickstart(sampleEnv(), node());
    expect(locked).to.match(/^rootpw --lock$/m);
    expect(locked).not.to.match(/--plaintext/);
    const crypted = set.kickstart(sampleEnv(), node({ attrs: { rootpw_crypted: '$6$x$y' } }));
    expect(crypted).to.match(/^rootpw --iscrypted \$6\$x\$y$/m);
    expect(crypted).not.to.match(/rootpw --lock/);
  });

  it('emits the org_kickswarm addon only with an image, with sha256 and size from the store', () => {
    const set = good();
    expect(set.kickstart(sampleEnv(), node())).not.to.match(/%addon/);
    const ks = set.kickstart(sampleEnv(), node({ attrs: { 'image.name': 'compute', 'image.method': 'multicast' } }));
    expect(ks).to.contain(`%addon org_kickswarm\nimage --name=compute --sha256=${'ab'.repeat(32)} --method=multicast --target=/dev/sda --size=8589934592\n%end\n`);
  });

  it('adds --verify for image.verify=yes (any spelling), nothing for no, and refuses other values', () => {
    const set = good();
    for (const yes of ['yes', 'True', ' on ', '1']) {
      expect(set.kickstart(sampleEnv(), node({ attrs: { 'image.name': 'compute', 'image.verify': yes } }))).to.match(/^image --name=compute .* --size=8589934592 --verify$/m);
    }
    for (const no of ['no', 'FALSE', '0', '']) {
      expect(set.kickstart(sampleEnv(), node({ attrs: { 'image.name': 'compute', 'image.verify': no } }))).to.match(/^image --name=compute .* --size=8589934592$/m);
    }
    const e = thrown(() => set.kickstart(sampleEnv(), node({ attrs: { 'image.name': 'compute', 'image.verify': 'sometimes' } })));
    expect(e).to.be.instanceOf(InvalidInputError);
    expect((e as Error).message).to.match(/image\.verify="sometimes" \(want yes or no\)/);
  });

  it('fails the render with NotFoundError when the image is not in the store', () => {
    const set = good({ 'profiles/compute.yaml': 'extends: base\nimage: {name: missing-img}\n' });
    const e = thrown(() => set.kickstart(sampleEnv(), node()));
    expect(e).to.be.instanceOf(NotFoundError);
    expect((e as Error).message).to.match(/image missing-img used by profile compute is not in the image store/);
  });

  it('fails with NotFoundError for an appliance without a profile, while pxelinux still renders', () => {
    const set = good();
    const n = node({ appliance: 'storage' });
    expect(thrown(() => set.kickstart(sampleEnv(), n))).to.be.instanceOf(NotFoundError);
    expect(set.pxelinux(sampleEnv(), n, 'os')).to.contain('localboot 0');
  });

  it('writes one %pre/%post section per snippet with its options, each closed by %end', () => {
    const set = good({
      'templates/snippets/logs.hbs': 'cp /tmp/*.log /mnt/sysimage/root/\n\n\n',
      'profiles/compute.yaml': 'extends: base\npost: ["logs --nochroot --interpreter /bin/bash"]\n',
    });
    const ks = set.kickstart(sampleEnv(), node());
    expect(ks).to.contain('\n%post --nochroot --interpreter /bin/bash\ncp /tmp/*.log /mnt/sysimage/root/\n%end\n');
    expect(ks.match(/^%(pre|post|packages)/gm)!.length).to.equal(ks.match(/^%end$/gm)!.length);
  });

  it('rejects a kickstart template that leaves a section open or puts commands after sections', () => {
    const r = load({ 'templates/kickstart.hbs': 'text\n%packages\n@core\n' });
    expect(r.problems[0]!.file).to.equal('templates/kickstart.hbs');
    expect(r.problems[0]!.message).to.match(/never closed by %end/);
    expect(() => checkKickstartStructure('text\n%post\n%end\nreboot\n', 'k')).to.throw(TemplateError, /commands come first/);
    expect(() => checkKickstartStructure('%pre\n%post\n%end\n', 'k')).to.throw(TemplateError, /before %pre/);
    expect(() => checkKickstartStructure('text\n%end\n', 'k')).to.throw(TemplateError, /without an open section/);
  });

  it('puts ks= and kickswarm.frontend= plus pxe.append on the install line', () => {
    const set = good();
    expect(set.pxelinux(sampleEnv({ pxe: { ...sampleEnv().pxe, append: '' } }), node(), 'install')).to.match(
      /^ {2}append ks=http:\/\/10\.1\.1\.1:8080\/install\/sbin\/kickstart\.cgi kickswarm\.frontend=http:\/\/10\.1\.1\.1:8080$/m,
    );
    expect(set.pxelinux(sampleEnv(), null, 'discover')).to.match(/kickswarm\.frontend=http:\/\/10\.1\.1\.1:8080 console=ttyS0,115200$/m);
    expect(() => set.pxelinux(sampleEnv(), null, 'install')).to.throw(/needs a node/);
  });

  it('derives the DHCP subnet from dhcp.subnet (plain or CIDR) or the TFTP address', () => {
    const set = good();
    const env = sampleEnv();
    expect(set.dhcp(env, 'dnsmasq', [])).to.match(/^dhcp-range=10\.1\.1\.0,static,255\.255\.255\.0,43200$/m);
    const cidr = { ...env, dhcp: { ...env.dhcp, subnet: '172.16.5.9/16' } };
    expect(set.dhcp(cidr, 'isc', [])).to.match(/^subnet 172\.16\.0\.0 netmask 255\.255\.0\.0 \{$/m);
    const named = { ...env, tftpServer: 'frontend.example' };
    expect(() => set.dhcp(named, 'isc', [])).to.throw(/set dhcp\.subnet/);
  });
});
