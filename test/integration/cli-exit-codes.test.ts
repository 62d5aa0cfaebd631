import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

describe('CLI exit codes and bulk inventory, as README says', function () {
  this.timeout(600_000);
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(cleanupTmpDirs);

  it('--version prints the version and exits 0', () => {
    const r = kickswarm(dir, ['--version']);
    expect([r.code, r.stdout.trim()]).to.deep.equal([0, version]);
  });

  it('bad input exits 2: unknown command or option, missing or malformed value', () => {
    for (const args of [
      ['no-such-command'],
      ['node', 'list', '--no-such-flag'],
      ['node', 'add', 'c-0', '--ip', '10.0.0.1'],
      ['node', 'add', 'c-0', '--mac', 'zz', '--ip', '10.0.0.1'],
      ['serve', '--http-port', 'x'],
    ]) {
      const r = kickswarm(dir, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
    }
  });

  it('failures exit 1 with one line: a conflict, an unknown node', () => {
    expect(kickswarm(dir, ['node', 'add', 'c-0', '--mac', '52:54:00:00:00:01', '--ip', '10.0.0.1']).code).to.equal(0);
    const dup = kickswarm(dir, ['node', 'add', 'c-1', '--mac', '52:54:00:00:00:01', '--ip', '10.0.0.2']);
    expect([dup.code, dup.stderr]).to.deep.equal([1, 'kickswarm: MAC 52:54:00:00:00:01 already belongs to node c-0\n']);
    const missing = kickswarm(dir, ['node', 'show', 'c-9']);
    expect([missing.code, missing.stderr]).to.deep.equal([1, 'kickswarm: no node named c-9\n']);
  });

  it('node import: one line per problem, exit 2, nothing written; then import, export, round trip', () => {
    dir = tmpDir();
    expect(kickswarm(dir, ['node', 'add', 'c-0', '--mac', '52:54:00:00:00:01', '--ip', '10.0.0.1']).code).to.equal(0);
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'name,mac,ip\nc-1,52:54:00:00:00:02,10.0.0.2\nc-2,52:54:00:00:00:01,10.0.0.3\nc-3,52:54:00:00:00:04,10.0.0.300\n');
    const r = kickswarm(dir, ['node', 'import', bad]);
    expect(r.code).to.equal(2);
    expect(r.stderr.split('\n').filter(Boolean)).to.deep.equal([
      `${bad}:3: row 2, column mac: MAC 52:54:00:00:00:01 also belongs to node c-0 (in the inventory)`,
      `${bad}:4: row 3, column ip: malformed IPv4 address "10.0.0.300" (want a.b.c.d)`,
      `kickswarm: ${bad}: 2 problems found; nothing was imported`,
    ]);
    expect(kickswarm(dir, ['node', 'show', 'c-1']).code, 'the good row was not written either').to.equal(1);

    const good = path.join(dir, 'nodes.yaml');
    fs.writeFileSync(good, 'nodes:\n  - {name: c-1, mac: "52:54:00:00:00:02", ip: 10.0.0.2, rack: 1, rank: 0, attributes: {ipmi.host: 10.9.0.2}}\n  - {name: c-0, ip: 10.0.0.9}\n');
    const dry = kickswarm(dir, ['node', 'import', good, '--dry-run']);
    expect([dry.code, dry.stdout]).to.deep.equal([0, `${good} is valid: 1 to add, 1 to update, 0 unchanged (dry run: nothing was written)\n`]);
    expect(kickswarm(dir, ['node', 'show', 'c-1']).code).to.equal(1);
    const done = kickswarm(dir, ['node', 'import', good, '--json']);
    expect(done.code, done.stderr).to.equal(0);
    expect(JSON.parse(done.stdout)).to.deep.include({ added: ['c-1'], updated: ['c-0'], unchanged: 0, dryRun: false });

    const csv = kickswarm(dir, ['node', 'export']);
    expect(csv.stdout).to.equal('name,mac,ip,appliance,rack,rank,uuid,attr.ipmi.host\nc-0,52:54:00:00:00:01,10.0.0.9,compute,,,,\nc-1,52:54:00:00:00:02,10.0.0.2,compute,1,0,,10.9.0.2\n');
    const file = path.join(dir, 'export.csv');
    fs.writeFileSync(file, csv.stdout);
    const other = tmpDir();
    expect(kickswarm(other, ['node', 'import', file]).code).to.equal(0);
    expect(kickswarm(other, ['node', 'export']).stdout).to.equal(csv.stdout);
    expect(kickswarm(dir, ['node', 'import', file]).stdout).to.equal(`imported ${file}: 0 added, 0 updated, 2 unchanged\n`);
    expect(kickswarm(dir, ['node', 'export', '--format', 'json']).code).to.equal(2);
  });
});
