import path from 'node:path';
import { expect } from 'chai';
import { parseInstallReport } from '../../protocol/install.js';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { FleetFeed } from '../../server/cluster/fleet.js';
import { planReinstall } from '../../server/cluster/plan.js';
import { maskSecrets, kickstartHash } from '../../server/cluster/served-kickstart.js';
import { INSTALL_LOG_LINES } from '../../server/inventory/install-records.js';
import { Inventory } from '../../server/inventory/store.js';
import type { NodeRecord } from '../../server/inventory/types.js';
import { parseEditPath } from '../../server/render/edit.js';
import { timeline } from '../../server/ui/timeline.js';
import { LogTail, formatRecord } from '../../node-installer/report/log-tail.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

function inventory(n: number): Inventory {
  const inv = new Inventory(path.join(tmpDir(), 'db.sqlite'));
  for (let i = 0; i < n; i++) {
    inv.addNode({ name: `c-0-${i}` as NodeName, mac: `52:54:00:00:00:${(i + 1).toString(16).padStart(2, '0')}` as Mac, ip: `10.0.0.${i + 1}` as Ipv4, appliance: 'compute', rack: 0, rank: i });
  }
  return inv;
}

describe('dashboard core', () => {
  after(cleanupTmpDirs);

  it('keeps at most INSTALL_LOG_LINES installer log lines per node, newest last, and drops them with the node', () => {
    const inv = inventory(2);
    for (let i = 0; i < INSTALL_LOG_LINES + 250; i += 50)
      inv.appendInstallLog(
        'c-0-0' as NodeName,
        Array.from({ length: 50 }, (_, k) => `line ${i + k}`),
      );
    inv.appendInstallLog('c-0-1' as NodeName, ['other']);
    const lines = inv.installLog('c-0-0' as NodeName).map((l) => l.line);
    expect(lines.length).to.equal(INSTALL_LOG_LINES);
    expect(lines[0]).to.equal('line 250');
    expect(lines.at(-1)).to.equal(`line ${INSTALL_LOG_LINES + 249}`);
    expect(inv.installLog('c-0-1' as NodeName).map((l) => l.line)).to.deep.equal(['other']);
    inv.removeNode('c-0-0' as NodeName);
    expect(inv.installLog('c-0-0' as NodeName)).to.deep.equal([]);
    inv.appendInstallLog('nobody' as NodeName, ['x']);
    inv.close();
  });

  it('report.cgi bodies carry bounded log lines', () => {
    expect(parseInstallReport({ state: 'writing', log: ['a', 'b'.repeat(5000)] }).log).to.deep.equal(['a', 'b'.repeat(1000)]);
    expect(() => parseInstallReport({ state: 'writing', log: Array(201).fill('x') })).to.throw(/at most 200/);
    expect(() => parseInstallReport({ state: 'writing', log: [1] })).to.throw(/list of/);
  });

  it('the installer log tail formats pino lines and bounds what waits', () => {
    expect(formatRecord(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 3, 4), msg: 'slow peer', peer: 'x', pid: 1 }))).to.equal('12:03:04 WARN slow peer peer=x');
    const t = new LogTail(5);
    for (let i = 0; i < 10; i++) t.write(`${JSON.stringify({ level: 30, time: 0, msg: `m${i}` })}\n`);
    const out = t.drain();
    expect(out[0]).to.match(/6 earlier log lines dropped/);
    expect(out.at(-1)).to.match(/m9$/);
    expect(t.drain()).to.deep.equal([]);
  });

  it('masks secret attribute values wherever they appear', () => {
    const text = 'rootpw --iscrypted $6$abcdefgh\nuser --password=hunter22\nkey=short';
    expect(maskSecrets(text, { rootpw_crypted: '$6$abcdefgh', 'ipmi.password': 'hunter22', 'ssh.key': 'abc', lang: 'en_US' })).to.equal(
      'rootpw --iscrypted ********\nuser --password=********\nkey=short',
    );
  });

  it('plans: new, same, changed with a diff, and fails with file and line', () => {
    const inv = inventory(4);
    const nodes = inv.listNodes();
    const render = (n: NodeRecord) => {
      if (n.name === 'c-0-3') throw new Error('x');
      return `text\nhostname ${n.name}\n`;
    };
    inv.setServedKickstart('c-0-1' as NodeName, { sha256: kickstartHash('text\nhostname c-0-1\n'), text: 'text\nhostname c-0-1\n' });
    inv.setServedKickstart('c-0-2' as NodeName, { sha256: kickstartHash('old'), text: 'text\nhostname old\n' });
    const plan = planReinstall(
      nodes,
      { kickstart: render, attributes: () => ({}), imageFor: () => ({ name: 'img', method: 'torrent' }), describe: () => ({ profile: 'compute', template: 'kickstart.hbs' }) },
      inv,
    );
    expect(plan.nodes.map((e) => [e.name, e.kickstart])).to.deep.equal([
      ['c-0-0', 'new'],
      ['c-0-1', 'same'],
      ['c-0-2', 'changed'],
      ['c-0-3', 'fails'],
    ]);
    expect(plan.nodes[2]!.diff).to.include('-hostname old').and.include('+hostname c-0-2');
    expect(plan.nodes[3]!.error?.file).to.equal('profiles/compute.yaml');
    expect(plan.ok).to.equal(false);
    expect(plan.nodes[0]).to.include({ profile: 'compute', template: 'templates/kickstart.hbs', image: 'img', method: 'torrent' });
    inv.close();
  });

  it('the fleet feed sends only changed rows, and nothing is reread when nothing changed', () => {
    const inv = inventory(3);
    let reads = 0;
    const src = { fleetRows: () => (reads++, inv.fleetRows()), fleetVersion: () => inv.fleetVersion() };
    const feed = new FleetFeed({ source: src, stalledAfterSeconds: () => 120, intervalMs: 60_000 });
    const got: number[] = [];
    const off = feed.subscribe((d) => got.push(d.rows.length));
    const base = reads;
    expect(feed.tick().rows).to.deep.equal([]);
    expect(reads).to.equal(base);
    const at = new Date(Date.now() + 5).toISOString();
    inv.setInstall('c-0-1' as NodeName, { state: 'downloading', bytesDone: 5, bytesTotal: 10, startedAt: at, updatedAt: at });
    const d = feed.tick();
    expect(d.rows.map((r) => [r[0], r[5], r[6]])).to.deep.equal([['c-0-1', 'downloading', 50]]);
    expect(d.summary.active).to.equal(1);
    inv.removeNode('c-0-2' as NodeName);
    expect(feed.tick().removed).to.deep.equal(['c-0-2']);
    expect(got).to.deep.equal([0, 1, 0]);
    off();
    expect(feed.listeners).to.equal(0);
    inv.close();
  });

  it('accepts only editable profile and template paths', () => {
    expect(parseEditPath('templates/pxelinux/install.hbs')).to.equal('templates/pxelinux/install.hbs');
    expect(parseEditPath('profiles/compute.yaml')).to.equal('profiles/compute.yaml');
    for (const bad of ['templates/../api-token', '/etc/passwd', 'templates/.x.hbs', 'profiles/a.yml', 'api-token', 'templates/a.hbs/../../b.hbs']) {
      expect(() => parseEditPath(bad), bad).to.throw(/not an editable file/);
    }
  });

  it('builds a boot timeline from the latest reinstall on', () => {
    const ev = (kind: string, message: string, data?: Record<string, unknown>, s = 0) => ({ id: 0, node: 'n' as NodeName, at: new Date(1_000_000 + s * 1000).toISOString(), kind, message, data });
    const steps = timeline([
      ev('install', 'old install', { state: 'done' }),
      ev('reinstall', 'reinstall requested', {}, 10),
      ev('pxe', 'served pxelinux.cfg/01-52-54-00-00-00-01 (install)', {}, 11),
      ev('kickstart', 'kickstart 200: served', { status: 200 }, 12),
      ev('install', 'install start -> profile', { state: 'profile' }, 13),
      ev('install', 'install profile -> failed: disk full', { state: 'failed' }, 20),
    ]);
    expect(steps.map((s) => [s.offset, s.step, s.tone])).to.deep.equal([
      [0, 'reinstall requested', 'info'],
      [1, 'TFTP: PXE config fetched', 'ok'],
      [2, 'kickstart served', 'ok'],
      [3, 'installer started', 'ok'],
      [10, 'install FAILED', 'bad'],
    ]);
  });
});
