/**
 * Hostile hosts against discovery: made-up MACs get no kickstart before an
 * admin approves them, registrations are rate-limited and capped, pending
 * nodes show in `node list` and `discover`, and `node approve` lets them in.
 * After every attack a well-behaved node still gets its kickstart.
 */
import path from 'node:path';
import { expect } from 'chai';
import { KICKSTART_PATH } from '../../protocol/api.js';
import type { Ipv4 } from '../../protocol/node.js';
import { Inventory } from '../../server/inventory/store.js';
import { kickswarm } from '../helpers/cli.js';
import { type TestServer, startTestServer } from '../helpers/http.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const GOOD_MAC = '52:54:00:cc:00:01';
const GOOD_IP = '127.0.1.1';
const ATTACKER = '127.0.66.6';

function fakeMac(i: number): string {
  return `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

async function goodNodeServed(s: TestServer): Promise<void> {
  const r = await s.request({ path: KICKSTART_PATH, from: GOOD_IP, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${GOOD_MAC}` } });
  expect(r.status).to.equal(200);
}

function startDiscovery(s: TestServer, limits: { autoApprove?: boolean; maxPending?: number; perMinute?: number } = {}): void {
  s.inventory.setDiscovery({ appliance: 'compute', rack: 0, firstIp: '127.0.2.1' as Ipv4, startedAt: new Date().toISOString(), ...limits });
}

describe('hostile: discovery', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer();
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
  });
  afterEach(() => s.close());

  it('a made-up MAC is registered as pending and gets 503 + Retry-After, never a kickstart', async () => {
    startDiscovery(s, { maxPending: 10, perMinute: 100 });
    const r = await s.request({ path: KICKSTART_PATH, from: ATTACKER, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${fakeMac(1)}` } });
    expect(r.status).to.equal(503);
    expect(r.headers['retry-after']).to.equal('7');
    expect(r.text).to.equal('kickstart.cgi: this node awaits approval by an admin; retry in 7 s\n');
    const n = s.inventory.findByMac(fakeMac(1) as never)!;
    expect(n).to.deep.include({ name: 'compute-0-0', pending: true, bootAction: 'install' });
    // Asking again, from the node's own address too, changes nothing until an admin approves.
    const again = await s.request({ path: KICKSTART_PATH, from: '127.0.2.1', headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${fakeMac(1)}` } });
    expect(again.status).to.equal(503);
    expect(s.renderer.rendered).to.deep.equal([]);
    expect(s.inventory.approve({ names: [n.name] }).map((x) => x.pending)).to.deep.equal([false]);
    const ok = await s.request({ path: KICKSTART_PATH, from: '127.0.2.1', headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${fakeMac(1)}` } });
    expect(ok.status).to.equal(200);
    expect(ok.text).to.equal('# kickstart for compute-0-0\nnetwork --ip=127.0.2.1\n');
    await goodNodeServed(s);
  });

  it('a flood of made-up MACs registers at most maxPending nodes; the rest are 404', async () => {
    startDiscovery(s, { maxPending: 5, perMinute: 10_000 });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      statuses.push((await s.request({ path: KICKSTART_PATH, from: ATTACKER, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${fakeMac(i)}` } })).status);
    }
    expect(statuses.slice(0, 5)).to.deep.equal([503, 503, 503, 503, 503]);
    expect(statuses.slice(5).every((x) => x === 404)).to.equal(true);
    expect(s.inventory.countPending()).to.equal(5);
    expect(s.inventory.count()).to.equal(6);
    expect(s.logs.some((l) => l.msg === 'discovery refused a new MAC' && String(l.why).includes('5 nodes already await approval'))).to.equal(true);
    await goodNodeServed(s);
  });

  it('registrations beyond the rate are refused, also with auto-approve', async () => {
    startDiscovery(s, { autoApprove: true, maxPending: 1000, perMinute: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await s.request({ path: KICKSTART_PATH, from: ATTACKER, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${fakeMac(100 + i)}` } })).status);
    }
    expect(statuses).to.deep.equal([200, 200, 200, 404, 404, 404, 404, 404, 404, 404]);
    expect(s.inventory.count()).to.equal(4);
    expect(s.inventory.countPending()).to.equal(0);
    await goodNodeServed(s);
  });
});

describe('hostile: discovery from the CLI', () => {
  let dir: string;
  before(() => {
    dir = tmpDir('kickswarm-disc-');
  });
  after(cleanupTmpDirs);

  it('node list shows pending nodes; node approve lets them in', function () {
    this.timeout(300_000); // five CLI processes; each starts the TypeScript sources
    const inv = new Inventory(path.join(dir, 'inventory.sqlite'));
    try {
      inv.setDiscovery({ appliance: 'compute', rack: 0, firstIp: '10.1.1.10' as Ipv4, startedAt: new Date().toISOString() });
      inv.registerDiscovered('02:00:00:00:00:01' as never, 'tftp');
      inv.setDiscovery(null);
    } finally {
      inv.close();
    }
    const list = kickswarm(dir, ['node', 'list']);
    expect(list.code).to.equal(0);
    expect(list.stdout).to.match(/compute-0-0\s+02:00:00:00:00:01\s+10\.1\.1\.10\s+compute\s+0\s+0\s+install\s+pending/);
    expect(list.stdout).to.contain('1 node(s) await approval: kickswarm node approve NAME... (or --all)');
    const listed = JSON.parse(kickswarm(dir, ['node', 'list', '--json']).stdout) as { name: string; pending: boolean }[];
    expect(listed.map((n) => [n.name, n.pending])).to.deep.equal([['compute-0-0', true]]);
    const approve = kickswarm(dir, ['node', 'approve', 'compute-0-0']);
    expect(approve.code).to.equal(0);
    expect(approve.stdout.trim()).to.equal('approved 1 node(s): compute-0-0');
    expect(JSON.parse(kickswarm(dir, ['node', 'list', '--json']).stdout)[0].pending).to.equal(false);
    expect(kickswarm(dir, ['node', 'approve', 'nosuch-0-0']).code).to.equal(1);
  });
});
