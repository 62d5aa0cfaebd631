import { expect } from 'chai';
import type { InstallState, Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { applyReport, startsNewInstall } from '../../server/cluster/report.js';
import { clusterStatus, nodeStatus, summarize } from '../../server/cluster/status.js';
import type { InstallProgress, NodeEvent, NodeRecord } from '../../server/inventory/types.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);
const iso = (s: number) => at(s).toISOString();

function node(name: string, install: InstallProgress | null, bootAction: NodeRecord['bootAction'] = 'install'): NodeRecord {
  return {
    name: name as NodeName,
    mac: '52:54:00:00:00:01' as Mac,
    ip: '10.1.1.1' as Ipv4,
    uuid: null,
    appliance: 'compute',
    rack: 0,
    rank: 0,
    attrs: {},
    bootAction,
    install,
    createdAt: iso(0),
    updatedAt: iso(0),
  };
}

function progress(state: InstallState, startedAt: number, updatedAt: number, extra: Partial<InstallProgress> = {}): InstallProgress {
  return { state, startedAt: iso(startedAt), updatedAt: iso(updatedAt), ...extra };
}

describe('cluster: status rows', () => {
  it('shows `-` and no numbers for a node with no install', () => {
    const r = nodeStatus(node('c0', null, 'os'), undefined, at(10), 120);
    expect(r).to.include({ name: 'c0', appliance: 'compute', bootAction: 'os', state: '-', percent: null, rate: null, durationSeconds: null, lastEvent: null });
  });

  it('computes percent, rate, bytes and a running duration for an active install', () => {
    const ev: NodeEvent = { id: 3, node: 'c0' as NodeName, at: iso(50), kind: 'install', message: 'install downloading -> writing' };
    const p = progress('writing', 0, 55, { bytesDone: 250, bytesTotal: 1000, rate: 40, bytesFromFrontend: 100, bytesFromPeers: 150 });
    const r = nodeStatus(node('c0', p), ev, at(60), 120);
    expect(r).to.include({ state: 'writing', installState: 'writing', percent: 25, rate: 40, bytesFromFrontend: 100, bytesFromPeers: 150, durationSeconds: 60, secondsSinceReport: 5 });
    expect(r.lastEvent).to.deep.equal({ at: iso(50), kind: 'install', message: 'install downloading -> writing' });
  });

  it('calls an active install stalled after stalledAfterSeconds without a report, and drops its rate', () => {
    const p = progress('downloading', 0, 10, { bytesDone: 5, bytesTotal: 10, rate: 99 });
    expect(nodeStatus(node('c0', p), undefined, at(130), 120).state).to.equal('downloading');
    const r = nodeStatus(node('c0', p), undefined, at(131), 120);
    expect(r).to.include({ state: 'stalled', installState: 'downloading', percent: 50, rate: null, secondsSinceReport: 121 });
  });

  it('never calls a finished install stalled; its duration ends at the last report', () => {
    const done = nodeStatus(node('c0', progress('done', 0, 300, { bytesDone: 7, bytesTotal: 10 }), 'os'), undefined, at(9999), 120);
    expect(done).to.include({ state: 'done', percent: 100, durationSeconds: 300, rate: null });
    const failed = nodeStatus(node('c1', progress('failed', 10, 40, { reason: '%post exited 1' })), undefined, at(9999), 120);
    expect(failed).to.include({ state: 'failed', reason: '%post exited 1', durationSeconds: 30 });
  });

  it('summarizes by state and boot action', () => {
    const rows = [
      nodeStatus(node('a', null, 'os'), undefined, at(500), 120),
      nodeStatus(node('b', progress('done', 0, 100), 'os'), undefined, at(500), 120),
      nodeStatus(node('c', progress('failed', 0, 100)), undefined, at(500), 120),
      nodeStatus(node('d', progress('writing', 0, 100)), undefined, at(500), 120),
      nodeStatus(node('e', progress('writing', 0, 450)), undefined, at(500), 120),
    ];
    const s = summarize(rows);
    expect(s).to.include({ total: 5, idle: 1, done: 1, failed: 1, stalled: 1, active: 1 });
    expect(s.byState).to.deep.equal({ '-': 1, done: 1, failed: 1, stalled: 1, writing: 1 });
    expect(s.byBootAction).to.deep.equal({ os: 2, install: 3 });
  });

  it('reads every node and its latest event from a status source', () => {
    const nodes = [node('a', null), node('b', progress('profile', 0, 1))];
    const rows = clusterStatus(
      {
        listNodes: () => nodes,
        events: (n) => [
          { id: 1, node: n, at: iso(1), kind: 'x', message: `old ${n}` },
          { id: 2, node: n, at: iso(2), kind: 'x', message: `new ${n}` },
        ],
      },
      at(3),
      120,
    );
    expect(rows.map((r) => [r.name, r.state, r.lastEvent?.message])).to.deep.equal([
      ['a', '-', 'new a'],
      ['b', 'profile', 'new b'],
    ]);
  });
});

describe('cluster: applying install reports', () => {
  it('starts an install on the first report and keeps startedAt and byte counts within it', () => {
    const a = applyReport(null, { state: 'profile' }, at(0));
    expect(a).to.deep.include({ newInstall: true, event: 'install start -> profile' });
    expect(a.progress).to.deep.equal({ state: 'profile', startedAt: iso(0), updatedAt: iso(0) });
    const b = applyReport(a.progress, { state: 'downloading', bytesDone: 10, bytesTotal: 100, rate: 5 }, at(2));
    expect(b.event).to.equal('install profile -> downloading');
    const c = applyReport(b.progress, { state: 'downloading', bytesDone: 50 }, at(3));
    expect(c.event).to.equal(undefined);
    expect(c.progress).to.deep.equal({ state: 'downloading', startedAt: iso(0), updatedAt: iso(3), bytesDone: 50, bytesTotal: 100 });
    const d = applyReport(c.progress, { state: 'done' }, at(90));
    expect(d.event).to.equal('install downloading -> done in 90.0 s');
    expect(d.progress).to.include({ bytesTotal: 100, startedAt: iso(0) });
  });

  it('records failed with its reason', () => {
    const f = applyReport(progress('post', 0, 5), { state: 'failed', reason: '%post script 2 exited 1' }, at(6));
    expect(f.event).to.equal('install post -> failed: %post script 2 exited 1');
    expect(f.progress.reason).to.equal('%post script 2 exited 1');
  });

  it('a profile report after any other state, or activity after a finished install, starts a new install', () => {
    expect(startsNewInstall(progress('profile', 0, 1), { state: 'profile' })).to.equal(false);
    expect(startsNewInstall(progress('writing', 0, 1), { state: 'profile' })).to.equal(true);
    expect(startsNewInstall(progress('done', 0, 1), { state: 'downloading' })).to.equal(true);
    expect(startsNewInstall(progress('failed', 0, 1), { state: 'failed' })).to.equal(false);
    const n = applyReport(progress('done', 0, 100, { bytesTotal: 9 }), { state: 'profile' }, at(500));
    expect(n.progress).to.deep.equal({ state: 'profile', startedAt: iso(500), updatedAt: iso(500) });
    expect(n.event).to.equal('install start -> profile');
  });
});
