import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { TemplateError } from '../../protocol/errors.js';
import { silentLogger } from '../../server/log.js';
import { ProfileService } from '../../server/render/service.js';
import { dataDirWith, node, removeDir, sampleEnv, tempDataDir } from '../fixtures/render/sample.js';
import { until } from '../helpers/until.js';

const waitFor = <T>(what: string, fn: () => T | undefined | false, ms = 3000): Promise<T> => until(what, fn, ms);

describe('render: ProfileService (hot reload, last good set)', () => {
  let dir: string;
  let svc: ProfileService;
  afterEach(async () => {
    await svc?.close();
    removeDir(dir);
  });

  it('serves a good edit within seconds, keeps the last good set on a broken edit, and recovers', async () => {
    dir = tempDataDir();
    svc = new ProfileService({ dataDir: dir, env: sampleEnv(), log: silentLogger(), debounceMs: 100 });
    await svc.start();
    const n = node();
    expect(svc.status()).to.include({ ok: true, generation: 1 });
    expect(svc.status().profiles).to.include('compute');
    expect(svc.status().templates).to.include('kickstart.hbs');
    const ks = path.join(dir, 'templates', 'kickstart.hbs');
    const original = fs.readFileSync(ks, 'utf8');

    fs.writeFileSync(ks, original.replace('skipx\n', 'skipx\n# edited-1\n'));
    const started = Date.now();
    await waitFor('the edit to be served', () => svc.kickstart(n).includes('# edited-1'));
    expect(Date.now() - started).to.be.below(2500);
    expect(svc.status()).to.include({ ok: true, generation: 2 });

    const broken = original.replace('skipx\n', 'skipx\n# edited-1\n{{attrs.typo_here}}\n');
    const badLine = broken.split('\n').findIndex((l) => l.includes('typo_here')) + 1;
    fs.writeFileSync(ks, broken);
    const st = await waitFor('the broken edit to be noticed', () => (svc.status().ok ? undefined : svc.status()));
    expect(st.generation).to.equal(2);
    expect(st.errors).to.have.length(1);
    expect(st.errors[0]).to.include({ file: 'templates/kickstart.hbs', line: badLine });
    expect(st.errors[0]!.message).to.match(/typo_here/);
    expect(svc.kickstart(n)).to.contain('# edited-1').and.not.contain('typo_here');

    fs.writeFileSync(ks, original);
    await waitFor('the fix to be served', () => svc.status().ok);
    expect(svc.status()).to.include({ generation: 3 });
    expect(svc.status().errors).to.deep.equal([]);
    expect(svc.kickstart(n)).not.to.contain('# edited-1');
  });

  it('reloads profile edits too', async () => {
    dir = tempDataDir();
    svc = new ProfileService({ dataDir: dir, env: sampleEnv(), log: silentLogger(), debounceMs: 100 });
    await svc.start();
    fs.writeFileSync(path.join(dir, 'profiles', 'compute.yaml'), 'extends: base\npackages: [numactl]\n');
    await waitFor('the profile edit', () => svc.kickstart(node()).includes('\nnumactl\n'));
    fs.writeFileSync(path.join(dir, 'profiles', 'gpu.yaml'), 'extends: nothing\n');
    const st = await waitFor('the bad profile', () => (svc.status().ok ? undefined : svc.status()));
    expect(st.errors[0]).to.include({ file: 'profiles/gpu.yaml', line: 1 });
    expect(svc.kickstart(node())).to.contain('\nnumactl\n');
  });

  it('starts with a broken set: status not ok, renders throw TemplateError naming the problem', async () => {
    dir = dataDirWith({ 'templates/pxelinux/os.hbs': 'default os\n{{nope}}\n' });
    svc = new ProfileService({ dataDir: dir, env: sampleEnv(), log: silentLogger(), watch: false });
    await svc.start();
    const st = svc.status();
    expect(st).to.include({ ok: false, generation: 0 });
    expect(st.errors[0]).to.include({ file: 'templates/pxelinux/os.hbs', line: 2 });
    expect(() => svc.kickstart(node())).to.throw(TemplateError, /templates\/pxelinux\/os\.hbs:2/);
    expect(() => svc.pxelinux(node(), 'os')).to.throw(TemplateError);
  });

  it('close() is idempotent and stops reloading', async () => {
    dir = tempDataDir();
    svc = new ProfileService({ dataDir: dir, env: sampleEnv(), log: silentLogger(), debounceMs: 50 });
    await svc.start();
    await svc.close();
    await svc.close();
    // A second, open service on the same files shows when a watcher would have reacted.
    const witness = new ProfileService({ dataDir: dir, env: sampleEnv(), log: silentLogger(), debounceMs: 50 });
    await witness.start();
    try {
      fs.writeFileSync(path.join(dir, 'templates', 'pxelinux', 'os.hbs'), 'broken {{#if}\n');
      await waitFor('the open service to see the broken edit', () => witness.status().ok === false);
      expect(svc.status()).to.include({ ok: true, generation: 1 });
    } finally {
      await witness.close();
    }
  });

  it('uses a new env from setEnv on the next render', async () => {
    dir = tempDataDir();
    svc = new ProfileService({ dataDir: dir, env: sampleEnv(), log: silentLogger(), watch: false });
    await svc.start();
    svc.setEnv(sampleEnv({ frontendUrl: 'http://10.9.9.9:1234/' }));
    expect(svc.pxelinux(node(), 'install')).to.contain('ks=http://10.9.9.9:1234/install/sbin/kickstart.cgi');
    expect(svc.attributes(node({ attrs: { x: 'y' } }))).to.include({ x: 'y', timezone: 'Europe/Berlin' });
    expect(svc.imageFor(node())).to.equal(undefined);
  });
});
