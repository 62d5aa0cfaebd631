import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { BUNDLE_STUBS, bundleInstaller, type InstallerBundle, stubsPlugin } from '../../server/bootenv/bundle.js';
import { tmpDir } from '../helpers/tmp.js';

describe('the installer bundle (what a boot environment runs)', function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;
  let made: InstallerBundle;

  before(async () => {
    dir = tmpDir('ksbundle-');
    file = path.join(dir, 'kickswarm-install.mjs');
    made = await bundleInstaller(file);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('holds the swarm stack but none of the packages it replaces with stubs', () => {
    expect(made.bytes).to.equal(fs.statSync(file).size);
    expect(made.inputs.some((p) => p.includes('node_modules/webtorrent/'))).to.equal(true);
    expect(made.inputs.some((p) => p.includes('node_modules/bittorrent-tracker/'))).to.equal(true);
    for (const name of [...Object.keys(BUNDLE_STUBS), 'node-fetch', 'k-rpc', 'xmlbuilder']) {
      expect(
        made.inputs.filter((p) => p.includes(`node_modules/${name}/`)),
        name,
      ).to.deep.equal([]);
    }
  });

  it('loads and runs on its own: --version and run --help', () => {
    expect(execFileSync(process.execPath, [file, '--version'], { encoding: 'utf8' }).trim()).to.match(/^\S+$/);
    expect(execFileSync(process.execPath, [file, 'run', '--help'], { encoding: 'utf8' })).to.match(/Usage: .*run/);
  });

  it('hands the swarm stack the built-in fetch in place of node-fetch', async () => {
    const probe = path.join(dir, 'probe.mjs');
    fs.writeFileSync(probe, "import fetch from 'cross-fetch-ponyfill';\nconst r = await fetch('data:text/plain,kickswarm');\nconsole.log(await r.text());\n");
    const esbuild = await import('esbuild');
    const out = path.join(dir, 'probe.bundle.mjs');
    await esbuild.build({
      entryPoints: [probe],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'silent',
      plugins: [stubsPlugin()],
    });
    expect(execFileSync(process.execPath, [out], { encoding: 'utf8' }).trim()).to.equal('kickswarm');
  });
});
