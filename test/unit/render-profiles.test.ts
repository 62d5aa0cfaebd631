import { expect } from 'chai';
import { loadRenderSet } from '../../server/render/renderset.js';
import { dataDirWith, node, removeDir, sampleEnv } from '../fixtures/render/sample.js';

const dirs: string[] = [];
function load(files: Record<string, string>) {
  const dir = dataDirWith(files);
  dirs.push(dir);
  return loadRenderSet(dir, sampleEnv());
}

describe('render: profiles', () => {
  after(() => dirs.forEach(removeDir));

  it('loads the shipped set with base, compute and login', () => {
    const r = load({});
    expect(r.problems).to.deep.equal([]);
    expect(r.profiles).to.include.members(['base', 'compute', 'login']);
    expect(r.set!.profiles.get('compute')!.chain).to.deep.equal(['base', 'compute']);
  });

  it('builds attribute precedence globals < base < child profile < node in one place', () => {
    const r = load({
      'profiles/base.yaml': 'attributes: {a: base, b: base, c: base, bootloader: --location=mbr, clearpart: --all}\n',
      'profiles/compute.yaml': 'extends: base\nattributes: {b: compute, c: compute}\n',
    });
    const env = sampleEnv({ globals: { a: 'global', g: 'global', z: 'global' } });
    const attrs = r.set!.attributes(env, node({ attrs: { c: 'node', z: 'node' } }));
    expect(attrs).to.include({ g: 'global', a: 'base', b: 'compute', c: 'node', z: 'node' });
  });

  it('inherits template and image, and lets a child drop the image with image: null', () => {
    const r = load({
      'profiles/compute.yaml': 'extends: base\nimage: {name: compute, method: multicast}\n',
      'profiles/gpu.yaml': 'extends: compute\n',
      'profiles/nogpu.yaml': 'extends: compute\nimage: null\n',
    });
    expect(r.problems).to.deep.equal([]);
    const gpu = r.set!.profiles.get('gpu')!;
    expect(gpu.template).to.equal('kickstart.hbs');
    expect(gpu.image).to.include({ name: 'compute', method: 'multicast', target: '/dev/sda', declaredIn: 'profiles/compute.yaml' });
    expect(r.set!.profiles.get('nogpu')!.image).to.equal(null);
    expect(r.set!.imageFor(sampleEnv(), node({ appliance: 'gpu' }))).to.deep.equal({ name: 'compute', method: 'multicast' });
  });

  it('lets node attributes override the profile image', () => {
    const r = load({ 'profiles/compute.yaml': 'extends: base\nimage: {name: compute}\n' });
    const n = node({ attrs: { 'image.method': 'http' } });
    expect(r.set!.imageFor(sampleEnv(), n)).to.deep.equal({ name: 'compute', method: 'http' });
    expect(() => r.set!.imageFor(sampleEnv(), node({ attrs: { 'image.method': 'carrier-pigeon' } }))).to.throw(/image.method/);
  });

  it('concatenates packages, pre and post base first, de-duplicated', () => {
    const r = load({
      'templates/snippets/extra.hbs': 'echo extra\n',
      'profiles/compute.yaml': 'extends: base\npackages: [chrony, tuned, "@core"]\npre: [report-start, extra]\npost: [extra --nochroot, hostname]\n',
    });
    const p = r.set!.profiles.get('compute')!;
    expect(p.packages).to.deep.equal(['@core', 'openssh-server', 'chrony', 'tuned']);
    expect(p.pre.map((s) => s.name)).to.deep.equal(['report-start', 'extra']);
    expect(p.post).to.deep.equal([
      { name: 'hostname', options: '' },
      { name: 'extra', options: '--nochroot' },
    ]);
  });

  it('reports an extends cycle naming the file and the line of extends', () => {
    const r = load({ 'profiles/a.yaml': 'description: a\nextends: b\n', 'profiles/b.yaml': 'extends: a\n' });
    expect(r.set).to.equal(null);
    expect(r.problems).to.deep.include({ file: 'profiles/a.yaml', line: 2, message: 'extends cycle: a -> b -> a' });
    expect(r.problems).to.deep.include({ file: 'profiles/b.yaml', line: 1, message: 'extends cycle: b -> a -> b' });
  });

  it('reports an unknown parent naming the file', () => {
    const r = load({ 'profiles/gpu.yaml': 'extends: computer\n' });
    expect(r.set).to.equal(null);
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({ file: 'profiles/gpu.yaml', line: 1 });
    expect(r.problems[0]!.message).to.match(/unknown profile "computer"/);
  });

  it('rejects unknown keys with the file and line', () => {
    const r = load({ 'profiles/gpu.yaml': 'extends: base\npackage: [vim]\n' });
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({ file: 'profiles/gpu.yaml', line: 2 });
    expect(r.problems[0]!.message).to.match(/package/);
  });

  it('rejects non-string attributes, bad methods, unsafe template paths and bad snippet options', () => {
    const r = load({
      'profiles/a.yaml': 'attributes:\n  cores: 16\n',
      'profiles/b.yaml': 'image: {name: x, method: ftp}\n',
      'profiles/c.yaml': 'template: ../../etc/passwd.hbs\n',
      'profiles/d.yaml': 'post: ["hostname; rm -rf /"]\n',
    });
    const files = r.problems.map((p) => `${p.file}:${p.line}`);
    expect(files).to.include.members(['profiles/a.yaml:2', 'profiles/b.yaml:1', 'profiles/c.yaml:1', 'profiles/d.yaml:1']);
    expect(r.problems.find((p) => p.file === 'profiles/a.yaml')!.message).to.match(/strings/);
  });

  it('reports YAML syntax errors with the line', () => {
    const r = load({ 'profiles/bad.yaml': 'extends: base\npackages: [a, b\n' });
    const p = r.problems.find((x) => x.file === 'profiles/bad.yaml')!;
    expect(p.message).to.match(/^YAML:/);
    expect(p.line).to.be.a('number');
  });

  it('reports a missing template or snippet on the profile that names it', () => {
    const r = load({ 'profiles/x.yaml': 'extends: base\ntemplate: other.hbs\npost: [nosuch]\n' });
    expect(r.problems).to.deep.include({ file: 'profiles/x.yaml', message: 'template other.hbs does not exist (no templates/other.hbs)' });
    expect(r.problems).to.deep.include({ file: 'profiles/x.yaml', message: 'post snippet "nosuch" does not exist (no templates/snippets/nosuch.hbs)' });
  });
});
