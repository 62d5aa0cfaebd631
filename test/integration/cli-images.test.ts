import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('kickswarm image commands', function () {
  this.timeout(60_000);
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

  it('refuses bad names with exit 2 and a duplicate name with exit 1', () => {
    for (const bad of ['../x', 'a/b', '.hidden', 'x.torrent']) expect(kickswarm(dir, ['image', 'add', raw, '--name', bad]).code, bad).to.equal(2);
    expect(kickswarm(dir, ['image', 'add', raw, '--name', 'gold']).code).to.equal(1);
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
    expect(r.stderr).to.match(/cannot tell whether image silver is in use: the profiles do not load/);
    expect(JSON.parse(kickswarm(dir, ['image', 'list', '--json']).stdout).map((i: { name: string }) => i.name)).to.deep.equal(['silver']);
    fs.writeFileSync(profile, good);
    expect(kickswarm(dir, ['image', 'remove', 'silver']).code).to.equal(0);
  });
});
