import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('cli: kickswarm bootenv (bad input and missing pieces)', () => {
  after(cleanupTmpDirs);

  it('bootenv show before any build says how to build one', () => {
    const dd = tmpDir();
    const r = kickswarm(dd, ['bootenv', 'show']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/no boot environment manifest at .*kickswarm\/manifest\.json \(build one: kickswarm bootenv build\)/);
  });

  it('refuses --kernel without --modules, a bad --compress and a bad module name (exit 2, nothing written)', () => {
    const dd = tmpDir();
    const out = path.join(dd, 'tftp');
    expect(kickswarm(dd, ['bootenv', 'build', '--out', out, '--kernel', '/boot/vmlinuz']).stderr).to.contain('--kernel FILE and --modules DIR go together');
    const c = kickswarm(dd, ['bootenv', 'build', '--out', out, '--compress', 'lz4']);
    expect(c.code).to.equal(2);
    expect(c.stderr).to.contain('--compress "lz4" (want gzip|zstd)');
    const m = kickswarm(dd, ['bootenv', 'build', '--out', out, '--modules-extra', 'e1000,../../x']);
    expect(m.code).to.equal(2);
    expect(m.stderr).to.contain('is not a module name');
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('an offline package folder without a kernel package gives one line saying what to put there', () => {
    const dd = tmpDir();
    const debs = tmpDir();
    const r = kickswarm(dd, ['bootenv', 'build', '--from-dir', debs, '--out', path.join(dd, 'tftp'), '--cache-dir', path.join(dd, 'cache')]);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.contain(`no linux-image-<version> package in ${debs}`);
  });
});
