import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import type { BootAction, InstallState, Ipv4, Mac, NodeName } from '../../protocol/node.js';
import type { PowerCycler } from '../../server/cluster/power.js';
import { barView, countsLine, lineView } from '../../server/cluster/progress.js';
import { type ReinstallInventory, powerCycleAll, startReinstall, waitForInstalls } from '../../server/cluster/reinstall.js';
import { NotFoundError } from '../../protocol/errors.js';
import type { InstallProgress, NodeEvent, NodeRecord, NodeSelector } from '../../server/inventory/types.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

/**
 * Virtual time: `sleep` registers a timer; once the event loop is idle of
 * immediates, time jumps to the earliest timer, which resolves (then `onSleep` runs).
 */
class FakeClock {
  t = T0;
  sleeps: number[] = [];
  onSleep: (() => void) | undefined;
  private timers: { due: number; resolve: () => void }[] = [];
  private scheduled = false;
  now = (): Date => new Date(this.t);
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    return new Promise((resolve) => {
      this.timers.push({ due: this.t + ms, resolve });
      this.schedule();
    });
  };
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.timers.length === 0) return;
      this.timers.sort((a, b) => a.due - b.due);
      const first = this.timers.shift()!;
      this.t = Math.max(this.t, first.due);
      this.onSleep?.();
      first.resolve();
      if (this.timers.length) this.schedule();
    });
  }
}

class FakeInventory implements ReinstallInventory {
  nodes = new Map<string, NodeRecord>();
  events_: NodeEvent[] = [];
  bootTransactions: string[][] = [];
  constructor(
    private readonly clock: FakeClock,
    names: string[],
  ) {
    for (const [i, name] of names.entries()) {
      this.nodes.set(name, {
        name: name as NodeName,
        mac: `52:54:00:00:00:${String(i).padStart(2, '0')}` as Mac,
        ip: `10.1.1.${i + 1}` as Ipv4,
        uuid: null,
        appliance: 'compute',
        rack: 0,
        rank: i,
        attrs: {},
        bootAction: 'os',
        install: { state: 'done', startedAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:10:00.000Z' },
        createdAt: '2029-01-01T00:00:00.000Z',
        updatedAt: '2029-01-01T00:00:00.000Z',
      });
    }
  }
  select(sel: NodeSelector): NodeRecord[] {
    if ('all' in sel) return [...this.nodes.values()];
    if ('appliance' in sel) return [...this.nodes.values()].filter((n) => n.appliance === sel.appliance);
    return sel.names.map((n) => {
      const r = this.nodes.get(n);
      if (!r) throw new NotFoundError(`no node named ${n}`);
      return r;
    });
  }
  setBootAction(sel: NodeSelector, action: BootAction): NodeRecord[] {
    const nodes = this.select(sel);
    this.bootTransactions.push(nodes.map((n) => n.name));
    for (const n of nodes) n.bootAction = action;
    return nodes;
  }
  setInstall(name: NodeName, install: InstallProgress | null): void {
    this.nodes.get(name)!.install = install;
  }
  recordEvent(name: NodeName, kind: string, message: string): void {
    this.events_.push({ id: this.events_.length + 1, node: name, at: this.clock.now().toISOString(), kind, message });
  }
  getNode(name: string): NodeRecord | undefined {
    return this.nodes.get(name);
  }
  events(name: NodeName, limit = 50): NodeEvent[] {
    return this.events_.filter((e) => e.node === name).slice(-limit);
  }
  /** What the report route would store. */
  report(name: string, state: InstallState, extra: Partial<InstallProgress> = {}): void {
    const n = this.nodes.get(name)!;
    const at = this.clock.now().toISOString();
    n.install = { startedAt: n.install?.startedAt ?? at, ...extra, state, updatedAt: at };
  }
}

function countingPower(clock: FakeClock, fail: string[] = []): PowerCycler & { max: number; started: string[]; startTimes: number[] } {
  let inFlight = 0;
  const d = {
    name: 'ipmi' as const,
    manual: false,
    max: 0,
    started: [] as string[],
    startTimes: [] as number[],
    async cycle(node: NodeRecord) {
      inFlight++;
      d.max = Math.max(d.max, inFlight);
      d.started.push(node.name);
      d.startTimes.push(clock.t);
      await clock.sleep(250); // a power cycle takes a quarter of a second (virtual time)
      inFlight--;
      if (fail.includes(node.name)) throw new Error(`node ${node.name}: ipmitool failed: exit 1`);
    },
  };
  return d;
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);

describe('cluster: reinstall orchestration', () => {
  it('sets install in one transaction, clears old progress, and power-cycles at most K at a time, staggered', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(20));
    const power = countingPower(clock, ['c7']);
    const started = await startReinstall({ inventory: inv, power, now: clock.now, sleep: clock.sleep }, { all: true }, { parallel: 3, staggerMs: 100 });
    expect(inv.bootTransactions).to.deep.equal([names(20)]);
    expect([...inv.nodes.values()].every((n) => n.bootAction === 'install' && n.install === null)).to.equal(true);
    expect(power.max).to.equal(3);
    expect(power.started).to.have.members(names(20));
    const gaps = power.startTimes.slice(1).map((t, i) => t - power.startTimes[i]!);
    expect(Math.min(...gaps)).to.be.at.least(100);
    expect(started.power.filter((p) => !p.ok)).to.deep.equal([{ name: 'c7', ok: false, error: 'node c7: ipmitool failed: exit 1' }]);
    expect(inv.events('c7' as NodeName).map((e) => e.message)).to.deep.equal(['reinstall requested (power ipmi)', 'power cycle failed (ipmi): node c7: ipmitool failed: exit 1']);
    expect(inv.events('c0' as NodeName).map((e) => e.kind)).to.deep.equal(['reinstall', 'power']);
  });

  it('an unknown name changes nothing; a manual driver cycles nothing', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(2));
    const power = countingPower(clock);
    let threw = false;
    await startReinstall({ inventory: inv, power, now: clock.now, sleep: clock.sleep }, { names: ['c0', 'nope' as NodeName] as NodeName[] }).catch(() => (threw = true));
    expect(threw).to.equal(true);
    expect(inv.nodes.get('c0')!.bootAction).to.equal('os');
    const manual = { name: 'none' as const, manual: true, cycle: async () => expect.fail('must not cycle') };
    const r = await startReinstall({ inventory: inv, power: manual, now: clock.now, sleep: clock.sleep }, { names: ['c1' as NodeName] });
    expect(r).to.deep.equal({ nodes: ['c1'], power: [{ name: 'c1', ok: true }] });
  });

  it('powerCycleAll with K=1 runs strictly one after the other', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(5));
    const power = countingPower(clock);
    const res = await powerCycleAll(inv.select({ all: true }), { power, now: clock.now, sleep: clock.sleep }, { parallel: 1, staggerMs: 0 });
    expect(power.max).to.equal(1);
    expect(res.map((r) => r.name)).to.deep.equal(names(5));
  });

  it('waits until every node is done with boot os or failed: exit status ok only when all done', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(3));
    await startReinstall({ inventory: inv, power: countingPower(clock), now: clock.now, sleep: clock.sleep }, { all: true }, { staggerMs: 0 });
    const script: Record<number, () => void> = {
      2: () => inv.report('c0', 'downloading', { bytesDone: 10, bytesTotal: 100 }),
      3: () => inv.report('c1', 'profile'),
      5: () => inv.report('c0', 'done'),
      6: () => inv.report('c2', 'failed', { reason: 'disk /dev/sda not found' }),
      7: () => inv.report('c1', 'done'),
      9: () => (inv.nodes.get('c0')!.bootAction = 'os'),
      10: () => (inv.nodes.get('c1')!.bootAction = 'os'),
    };
    let tick = 0;
    clock.onSleep = () => script[++tick]?.();
    const ticks: number[] = [];
    const s = await waitForInstalls({ inventory: inv, now: clock.now, sleep: clock.sleep }, names(3) as NodeName[], {
      timeoutSeconds: 600,
      stalledAfterSeconds: 120,
      pollMs: 1000,
      onTick: (_rows, elapsed) => ticks.push(elapsed),
    });
    expect(s.ok).to.equal(false);
    expect(s.timedOut).to.equal(false);
    expect(s.counts).to.deep.equal({ done: 2, failed: 1, stalled: 0, pending: 0 });
    expect(s.nodes.find((n) => n.name === 'c2')).to.include({ outcome: 'failed', reason: 'disk /dev/sda not found' });
    expect(ticks.at(-1)).to.equal(10);
  });

  it('all done and flipped -> ok', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(2));
    await startReinstall({ inventory: inv, power: countingPower(clock), now: clock.now, sleep: clock.sleep }, { all: true }, { staggerMs: 0 });
    clock.onSleep = () => {
      for (const n of inv.nodes.values()) {
        inv.report(n.name, 'done');
        n.bootAction = 'os';
      }
    };
    const s = await waitForInstalls({ inventory: inv, now: clock.now, sleep: clock.sleep }, names(2) as NodeName[], { timeoutSeconds: 60, stalledAfterSeconds: 30 });
    expect(s).to.include({ ok: true, timedOut: false });
    expect(s.counts.done).to.equal(2);
  });

  it('timeout -> every unfinished node is stalled, with a reason saying why', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(4));
    await startReinstall({ inventory: inv, power: countingPower(clock), now: clock.now, sleep: clock.sleep }, { all: true }, { staggerMs: 0 });
    let tick = 0;
    clock.onSleep = () => {
      tick++;
      if (tick === 1) inv.report('c0', 'writing', { bytesDone: 30, bytesTotal: 100 });
      if (tick === 1) inv.report('c2', 'done');
      if (tick >= 1) inv.report('c1', 'downloading', { bytesDone: tick, bytesTotal: 1000, rate: 1 });
    };
    const s = await waitForInstalls({ inventory: inv, now: clock.now, sleep: clock.sleep }, names(4) as NodeName[], {
      timeoutSeconds: 300,
      stalledAfterSeconds: 120,
      pollMs: 10_000,
      failed: new Map([['c3', 'power cycle failed: exit 1']]),
    });
    expect(s).to.include({ ok: false, timedOut: true, interrupted: false, elapsedSeconds: 300 });
    const by = Object.fromEntries(s.nodes.map((n) => [n.name, [n.outcome, n.reason]]));
    expect(by.c0).to.deep.equal(['stalled', 'stalled in writing at 30%: no report for 290 s']);
    expect(by.c1![0]).to.equal('stalled');
    expect(by.c1![1]).to.match(/^still downloading at \d+(\.\d)?% when the timeout passed$/);
    expect(by.c2).to.deep.equal(['stalled', 'install done but boot action is still install (setPxeboot.cgi?action=os not called)']);
    expect(by.c3).to.deep.equal(['failed', 'power cycle failed: exit 1']);
    expect(clock.sleeps.every((ms) => ms <= 10_000)).to.equal(true);
  });

  it('an aborted wait leaves unfinished nodes pending', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(1));
    await startReinstall({ inventory: inv, power: countingPower(clock), now: clock.now, sleep: clock.sleep }, { all: true }, { staggerMs: 0 });
    const ac = new AbortController();
    clock.onSleep = () => ac.abort();
    const s = await waitForInstalls({ inventory: inv, now: clock.now, sleep: clock.sleep }, ['c0' as NodeName], { timeoutSeconds: 600, stalledAfterSeconds: 60, signal: ac.signal });
    expect(s).to.include({ ok: false, interrupted: true, timedOut: false });
    expect(s.nodes[0]).to.include({ outcome: 'pending', reason: 'no install report (did the node PXE-boot with boot action install?)' });
  });
});

describe('cluster: plain-line progress', () => {
  it('prints state changes once and a summary line every 5 s', async () => {
    const clock = new FakeClock();
    const inv = new FakeInventory(clock, names(2));
    await startReinstall({ inventory: inv, power: countingPower(clock), now: clock.now, sleep: clock.sleep }, { all: true }, { staggerMs: 0 });
    const lines: string[] = [];
    const view = lineView({ out: (l) => lines.push(l) });
    let tick = 0;
    clock.onSleep = () => {
      tick++;
      if (tick === 2) inv.report('c0', 'downloading', { bytesDone: 50, bytesTotal: 100, rate: 2048 });
      if (tick === 3) inv.report('c0', 'downloading', { bytesDone: 60, bytesTotal: 100, rate: 2048 });
      if (tick === 4) inv.report('c1', 'failed', { reason: 'no disk' });
      if (tick === 7) {
        inv.report('c0', 'done');
        inv.nodes.get('c0')!.bootAction = 'os';
      }
    };
    await waitForInstalls({ inventory: inv, now: clock.now, sleep: clock.sleep }, names(2) as NodeName[], {
      timeoutSeconds: 60,
      stalledAfterSeconds: 30,
      onTick: (rows, e) => view.update(rows, e),
    });
    expect(lines).to.deep.equal(['[+2.0s] c0: downloading 50%', '[+4.0s] c1: failed (no disk)', '[+5.0s] 1 failed, 1 downloading; installing at 60% on average, 2.0 KiB/s in all', '[+7.0s] c0: done']);
    expect(countsLine([])).to.equal('');
  });
});

describe('cluster: progress bars', () => {
  it('draws one bar per node and an overall bar on a terminal, and logs a failure above them', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120, rows: 40, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    const view = barView({ stream: stream as unknown as NodeJS.WritableStream });
    const row = (name: string, state: InstallState | '-', percent: number | null, reason: string | null = null) => ({
      name: name as NodeName,
      row: {
        name,
        appliance: 'compute',
        bootAction: 'install' as BootAction,
        state,
        installState: state === '-' ? null : state,
        percent,
        rate: state === 'writing' ? 4096 : null,
        bytesDone: null,
        bytesTotal: null,
        bytesFromFrontend: null,
        bytesFromPeers: null,
        reason,
        startedAt: null,
        updatedAt: null,
        secondsSinceReport: null,
        durationSeconds: null,
        lastEvent: null,
      },
    });
    view.update([row('node-a', 'writing', 40), row('node-b', 'failed', null, 'no disk')], 3);
    view.stop();
    view.stop();
    expect(text).to.contain('node-a').and.to.contain('writing').and.to.contain('4.0 KiB/s');
    expect(text).to.contain('node-b: failed: no disk');
    expect(text).to.match(/overall\s+\|.*\|\s+70% 1 failed, 1 writing/);
  });
});
