import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Inventory } from '../../server/inventory/store.js';
import { REPO } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

describe('inventory under kill -9', function () {
  this.timeout(30_000);
  after(cleanupTmpDirs);

  it('a writer killed mid-stream leaves a consistent, usable database', async () => {
    const file = path.join(tmpDir(), 'inventory.sqlite');
    new Inventory(file).close();
    const script = `
      import { Inventory } from './server/inventory/store.ts';
      const inv = new Inventory(${JSON.stringify(file)});
      process.stdout.write('ready\\n');
      for (let i = 0; ; i++) {
        const hex = i.toString(16).padStart(6, '0');
        inv.addNode({ name: 'n-' + i, mac: '52:54:00:' + hex.match(/../g).join(':'), ip: '10.' + ((i >> 16) & 255) + '.' + ((i >> 8) & 255) + '.' + (i & 255), appliance: 'compute' });
        inv.setBootAction({ names: ['n-' + i] }, 'install');
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const reader = new Database(file, { readonly: true });
    try {
      await until('the writer to commit more than 10 nodes', () => (reader.prepare('SELECT count(*) AS n FROM nodes').get() as { n: number }).n > 10, 20_000);
    } finally {
      reader.close();
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const db = new Database(file);
    expect(db.pragma('integrity_check', { simple: true })).to.equal('ok');
    db.close();
    const inv = new Inventory(file);
    try {
      const nodes = inv.listNodes();
      expect(nodes.length, 'the writer made progress before the kill').to.be.greaterThan(10);
      // Every node that exists was added in one transaction with its event.
      for (const n of nodes.slice(-5)) expect(inv.events(n.name).map((e) => e.kind)).to.include('inventory');
      inv.addNode({ name: 'after-crash' as never, mac: '52:54:ff:00:00:01' as never, ip: '10.255.0.1' as never, appliance: 'compute' });
      expect(inv.getNode('after-crash')).to.not.equal(undefined);
    } finally {
      inv.close();
    }
  });
});
