import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { BUNDLE_STUBS, bundleInstaller, type InstallerBundle, stubsPlugin } from '../../server/bootenv/bundle.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
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

  it("hands the swarm stack undici's fetch in place of node-fetch, dispatcher and all", async () => {
    const probe = path.join(dir, 'probe.mjs');
    fs.writeFileSync(
      probe,
      [
        "import http from 'node:http';",
        "import fetch from 'cross-fetch-ponyfill';",
        "import { Agent } from 'undici';",
        'const server = http.createServer((req, res) => res.end(req.socket.remoteAddress));',
        "await new Promise((r) => server.listen(0, '127.0.0.1', r));",
        "const res = await fetch(`http://127.0.0.1:${server.address().port}/`, { dispatcher: new Agent({ localAddress: '127.0.0.7' }) });",
        'console.log(await res.text());',
        "console.log(process.moduleLoadList.some((m) => m.includes('internal/deps/undici')) ? 'node-undici' : 'bundled-undici-only');",
        'server.close();',
        'process.exit(0);',
      ].join('\n'),
    );
    const esbuild = await import('esbuild');
    const out = path.join(dir, 'probe.bundle.mjs');
    await esbuild.build({
      entryPoints: [probe],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'silent',
      // The probe lives in a temporary folder; its own `undici` import resolves from kickswarm's.
      nodePaths: [path.join(PACKAGE_ROOT, 'node_modules')],
      // undici is CommonJS and requires Node.js's modules, as in the installer's bundle.
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      plugins: [stubsPlugin()],
    });
    expect(execFileSync(process.execPath, [out], { encoding: 'utf8' }).trim().split('\n')).to.deep.equal(['127.0.0.7', 'bundled-undici-only']);
  });

  it("never loads Node.js's internal undici at start-up", () => {
    const preload = path.join(dir, 'loaded.cjs');
    fs.writeFileSync(preload, "process.on('exit', () => console.log(process.moduleLoadList.some((m) => m.includes('internal/deps/undici'))));\n");
    expect(execFileSync(process.execPath, ['--require', preload, file, '--version'], { encoding: 'utf8' }).trim().split('\n').pop()).to.equal('false');
  });
});
