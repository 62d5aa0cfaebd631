import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { sha256 } from '../helpers/hash.js';

describe('kickswarm image commands', function () {
  // Every step is a CLI process (about a second each, many more on a loaded machine).
  this.timeout(900_000);
  let dir: string;
  let raw: string;
  before(() => {
    dir = tmpDir();
    raw = path.join(dir, 'disk.raw');
    fs.writeFileSync(raw, Buffer.concat([crypto.randomBytes(1 << 20), Buffer.alloc(3 << 20), crypto.randomBytes(12345)]));
  });
  after(cleanupTmpDirs);

  it('adds an image and lists it as a table and JSON', () => {
    const r = kickswarm(dir, ['image', 'add', raw, '--name', 'gold']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/sha256: +[0-9a-f]{64}/);
    const list = JSON.parse(kickswarm(dir, ['image', 'list', '--json']).stdout) as { name: string; rawSize: number; storedChunks: number; chunkCount: number }[];
    expect(list).to.have.length(1);
    expect(list[0]).to.include({ name: 'gold', rawSize: fs.statSync(raw).size });
    expect(list[0]!.storedChunks).to.be.below(list[0]!.chunkCount);
  });

  it('refuses bad names with exit 2; an existing name gets its next version', () => {
    for (const bad of ['../x', 'a/b', '.hidden', 'x.torrent', 'gold@2']) expect(kickswarm(dir, ['image', 'add', raw, '--name', bad]).code, bad).to.equal(2);
    const r = kickswarm(dir, ['image', 'add', raw, '--name', 'gold']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/version: +2 \(gold@2, now current\)/);
  });

  it('refuses to remove an image a node or profile uses, naming the users', () => {
    expect(kickswarm(dir, ['node', 'add', 'compute-0-0', '--mac', '52:54:00:00:00:09', '--ip', '10.1.1.9', '--attr', 'image.name=gold']).code).to.equal(0);
    const r = kickswarm(dir, ['image', 'remove', 'gold']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/in use by node compute-0-0/);
    expect(kickswarm(dir, ['node', 'remove', 'compute-0-0']).code).to.equal(0);
    expect(kickswarm(dir, ['image', 'remove', 'gold']).code).to.equal(0);
    expect(JSON.parse(kickswarm(dir, ['image', 'list', '--json']).stdout)).to.deep.equal([]);
    expect(fs.readdirSync(path.join(dir, 'images'))).to.deep.equal([]);
  });

  it('refuses to remove an image while the profiles do not load (cannot tell who uses it), and removes it once they do', () => {
    expect(kickswarm(dir, ['image', 'add', raw, '--name', 'silver']).code).to.equal(0);
    const profile = path.join(dir, 'profiles', 'compute.yaml');
    const good = fs.readFileSync(profile, 'utf8');
    fs.writeFileSync(profile, `${good}\nnot_a_profile_key: 1\n`);
    const r = kickswarm(dir, ['image', 'remove', 'silver']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/cannot tell which images are in use: the profiles do not load/);
    expect(JSON.parse(kickswarm(dir, ['image', 'list', '--json']).stdout).map((i: { name: string }) => i.name)).to.deep.equal(['silver']);
    fs.writeFileSync(profile, good);
    expect(kickswarm(dir, ['image', 'remove', 'silver']).code).to.equal(0);
  });

  it('versions: pins, list with users, rollback, prune refused while pinned, remove fails closed on broken profiles', () => {
    const raw2 = path.join(dir, 'disk2.raw');
    fs.writeFileSync(raw2, crypto.randomBytes(300_000));
    const ok = (args: string[]) => {
      const r = kickswarm(dir, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
      return r;
    };
    ok(['image', 'add', raw, '--name', 'comp']);
    ok(['image', 'add', raw2, '--name', 'comp']);
    ok(['node', 'add', 'c0-1', '--mac', '52:54:00:00:00:21', '--ip', '10.1.1.21', '--attr', 'image.name=comp@1']);
    type Listing = { name: string; current: number; sha256: string; versions: { ref: string; current: boolean; usedBy: string[] | null; installedOn: string[] }[] };
    const list = () => (JSON.parse(ok(['image', 'list', '--json']).stdout) as Listing[]).find((i) => i.name === 'comp')!;
    let comp = list();
    expect(comp.current).to.equal(2);
    expect(comp.sha256).to.equal(sha256(fs.readFileSync(raw2)));
    expect(comp.versions.map((v) => [v.ref, v.current, v.usedBy])).to.deep.equal([
      ['comp@1', false, ['node c0-1']],
      ['comp@2', true, []],
    ]);
    expect(ok(['image', 'list']).stdout).to.match(/^comp\s+1\s+\S+ MiB.*c0-1/m);

    const pruned = kickswarm(dir, ['image', 'prune', 'comp', '--keep', '1']);
    expect(pruned.code).to.equal(1);
    expect(pruned.stderr).to.match(/nothing pruned: comp@1 \(used by node c0-1\)/);
    expect(kickswarm(dir, ['image', 'prune', 'comp', '--keep', '0']).code).to.equal(2);
    expect(ok(['image', 'rollback', 'comp']).stdout).to.match(/image comp: current version 2 -> 1/);
    expect(list().current).to.equal(1);
    const rm1 = kickswarm(dir, ['image', 'remove', 'comp@1']);
    expect(rm1.code).to.equal(1);
    expect(rm1.stderr).to.match(/in use by node c0-1/);

    ok(['node', 'remove', 'c0-1']);
    ok(['image', 'rollback', 'comp', '--to', '2']);
    expect(ok(['image', 'prune', 'comp', '--keep', '1']).stdout).to.match(/removed comp@1/);
    comp = list();
    expect(comp.versions.map((v) => v.ref)).to.deep.equal(['comp@2']);

    // A profile set that does not load: nobody can say the image is unused, so removal is refused; list still lists.
    fs.writeFileSync(path.join(dir, 'profiles', 'broken.yaml'), 'parent: [unclosed\n');
    const rm = kickswarm(dir, ['image', 'remove', 'comp']);
    expect(rm.code).to.equal(1);
    expect(rm.stderr).to.match(/cannot tell which images are in use: the profiles do not load \(profiles\/broken\.yaml/);
    const l = kickswarm(dir, ['image', 'list', '--json']);
    expect(l.code).to.equal(0);
    expect(l.stderr).to.match(/warning: cannot tell which images are in use/);
    expect((JSON.parse(l.stdout) as Listing[]).find((i) => i.name === 'comp')!.versions[0]!.usedBy).to.equal(null);
    fs.rmSync(path.join(dir, 'profiles', 'broken.yaml'));
    ok(['image', 'remove', 'comp']);
    expect(fs.readdirSync(path.join(dir, 'images')).filter((f) => f.startsWith('comp'))).to.deep.equal([]);
  });
});
