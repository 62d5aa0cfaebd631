import { Command } from 'commander';
import { expect } from 'chai';
import type { NodeName } from '../../protocol/node.js';
import type { ExecFn } from '../../server/cluster/power.js';
import type { CliContext } from '../../server/cli/context.js';
import { registerNodeCommands } from '../../server/cli/nodes.js';
import { reinstallCommandModule } from '../../server/cli/reinstall.js';
import { statusCommandModule } from '../../server/cli/status.js';
import { loadConfig } from '../../server/config/load.js';
import { ensureDataDir } from '../../server/datadir.js';
import { Inventory } from '../../server/inventory/store.js';
import type { InstallProgress } from '../../server/inventory/types.js';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

interface Harness {
  run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }>;
  inventory: Inventory;
  close(): void;
}

/** The status and reinstall modules on a commander program over a temp data dir, in this process. */
function harness(dir: string, deps: Parameters<typeof reinstallCommandModule>[0] = {}): Harness {
  const inv = new Inventory(ensureDataDir(dir).db);
  return {
    inventory: inv,
    async run(args) {
      const out: string[] = [];
      const err: string[] = [];
      let code = 0;
      const ctx: CliContext = {
        dataDir: () => ensureDataDir(dir),
        inventory: () => inv,
        configFile: () => undefined,
        config: (o) => loadConfig({ dataDir: dir, overrides: o, env: {} }),
        out: (s) => out.push(s),
        err: (s) => err.push(s),
        isTTY: false,
        setExitCode: (c) => (code = c),
      };
      const program = new Command('kickswarm').exitOverride();
      registerNodeCommands(program, ctx);
      statusCommandModule({ now: deps.now })(program, ctx);
      reinstallCommandModule(deps)(program, ctx);
      for (const c of program.commands) c.exitOverride();
      await program.parseAsync(args, { from: 'user' });
      return { code, out, err };
    },
    close: () => inv.close(),
  };
}

describe('kickswarm reinstall and status (in process)', () => {
  after(cleanupTmpDirs);

  it('reinstall --power command runs the template per node, K at a time, and reports power failures (exit 1)', async () => {
    const calls: string[][] = [];
    const exec: ExecFn = async (file, args) => {
      calls.push([file, ...args]);
      if (args[0] === 'c1') throw Object.assign(new Error('exit 4'), { exitCode: 4, stderr: 'outlet 12 does not answer' });
      return { stdout: '', stderr: '' };
    };
    const h = harness(tmpDir(), { exec, staggerMs: 0 });
    for (const [i, n] of ['c0', 'c1', 'c2'].entries()) await h.run(['node', 'add', n, '--mac', `52:54:00:00:03:0${i}`, '--ip', `10.9.0.${i + 1}`, '--attr', 'pdu=a b;c']);
    const r = await h.run(['reinstall', '--all', '--power', 'command', '--power-command', '/opt/pdu {{name}} {{attr.pdu}}', '--parallel', '2', '--json']);
    expect(calls).to.deep.equal([
      ['/opt/pdu', 'c0', 'a b;c'],
      ['/opt/pdu', 'c1', 'a b;c'],
      ['/opt/pdu', 'c2', 'a b;c'],
    ]);
    expect(r.code).to.equal(1);
    const j = JSON.parse(r.out.join('\n'));
    expect(j).to.include({ ok: false, power: 'command', waited: false });
    expect(j.nodes.map((n: { name: string; outcome: string }) => `${n.name}:${n.outcome}`)).to.deep.equal(['c0:started', 'c1:failed', 'c2:started']);
    expect(r.err.join('\n')).to.contain('node c1: /opt/pdu failed: exit 4: outlet 12 does not answer');
    expect(h.inventory.listNodes().map((n) => n.bootAction)).to.deep.equal(['install', 'install', 'install']);
    h.close();
  });

  it('reinstall --wait follows reports until done; exit 0 only when all are done and back on os', async () => {
    let t = Date.parse('2030-01-01T00:00:00.000Z');
    let tick = 0;
    let inv: Inventory | undefined = undefined;
    const report = (name: string, p: Partial<InstallProgress> & Pick<InstallProgress, 'state'>) => {
      const at = new Date(t).toISOString();
      inv!.setInstall(name as NodeName, { startedAt: inv!.requireNode(name).install?.startedAt ?? at, updatedAt: at, ...p });
    };
    const sleep = async (ms: number) => {
      t += ms;
      tick++;
      if (tick === 1) report('a0', { state: 'downloading', bytesDone: 10, bytesTotal: 100, rate: 10 });
      if (tick === 2) report('a1', { state: 'writing', bytesDone: 50, bytesTotal: 100 });
      if (tick === 3) {
        report('a0', { state: 'done' });
        inv!.setBootAction({ names: ['a0' as NodeName] }, 'os', 'node request');
      }
      if (tick === 4) report('a1', { state: 'failed', reason: 'checksum mismatch' });
    };
    const h = harness(tmpDir(), { now: () => new Date(t), sleep, staggerMs: 0 });
    inv = h.inventory;
    await h.run(['node', 'add', 'a0', '--mac', '52:54:00:00:04:00', '--ip', '10.9.1.1']);
    await h.run(['node', 'add', 'a1', '--mac', '52:54:00:00:04:01', '--ip', '10.9.1.2']);
    const r = await h.run(['reinstall', 'a0', 'a1', '--wait']);
    expect(r.code).to.equal(1);
    const text = r.out.join('\n');
    expect(text).to.contain('2 node(s) set to install: a0 a1');
    expect(text).to.contain('power driver none: reboot these nodes now');
    expect(text).to.match(/a0: downloading 10%/);
    expect(text).to.match(/a1: failed \(checksum mismatch\)/);
    expect(text).to.match(/a1\s+failed\s+checksum mismatch/);
    expect(text).to.contain('reinstall incomplete: 1 done, 1 failed, 0 stalled of 2');
    expect(text).to.contain('keep boot action install and reinstall on their next network boot');

    const s = await h.run(['status', '--json', '--stalled-after', '60']);
    const j = JSON.parse(s.out.join('\n'));
    expect(j.nodes.map((n: { name: string; state: string; bootAction: string }) => [n.name, n.state, n.bootAction])).to.deep.equal([
      ['a0', 'done', 'os'],
      ['a1', 'failed', 'install'],
    ]);
    expect(j.summary).to.include({ total: 2, done: 1, failed: 1 });
    expect(j.stalledAfterSeconds).to.equal(60);

    const table = (await h.run(['status'])).out.join('\n');
    expect(table).to.match(/^NAME\s+APPLIANCE\s+BOOT\s+STATE\s+PROGRESS/);
    expect(table).to.match(/a0\s+compute\s+os\s+done\s+100\.0%/);
    expect(table).to.contain('2 nodes: 1 done, 1 failed, 0 stalled, 0 installing, 0 idle');
    h.close();
  });

  it('reinstall --wait exits 0 once every node is done and flipped to os', async () => {
    let t = Date.parse('2030-01-01T00:00:00.000Z');
    let inv: Inventory | undefined = undefined;
    const sleep = async (ms: number) => {
      t += ms;
      const at = new Date(t).toISOString();
      for (const n of inv!.listNodes()) {
        inv!.setInstall(n.name, { state: 'done', startedAt: at, updatedAt: at, bytesFromFrontend: 1024, bytesFromPeers: 3072 });
        inv!.setBootAction({ names: [n.name] }, 'os', 'node request');
      }
    };
    const h = harness(tmpDir(), { now: () => new Date(t), sleep, staggerMs: 0 });
    inv = h.inventory;
    await h.run(['node', 'add', 'd0', '--mac', '52:54:00:00:08:00', '--ip', '10.9.5.1']);
    await h.run(['node', 'add', 'd1', '--mac', '52:54:00:00:08:01', '--ip', '10.9.5.2']);
    const r = await h.run(['reinstall', '--all', '--wait', '--json']);
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out.join('\n'));
    expect(j).to.include({ ok: true, timedOut: false });
    expect(j.counts).to.deep.equal({ done: 2, failed: 0, stalled: 0, pending: 0 });
    expect(j.nodes[0]).to.include({ name: 'd0', outcome: 'done', state: 'done', bootAction: 'os', bytesFromPeers: 3072 });
    expect(r.err.join('\n')).to.contain('2 node(s) set to install');
    h.close();
  });

  it('reinstall --wait --timeout marks silent nodes stalled and exits 1', async () => {
    let t = Date.parse('2030-01-01T00:00:00.000Z');
    const h = harness(tmpDir(), { now: () => new Date(t), sleep: async (ms) => void (t += ms), staggerMs: 0 });
    await h.run(['node', 'add', 'b0', '--mac', '52:54:00:00:05:00', '--ip', '10.9.2.1']);
    const r = await h.run(['reinstall', 'b0', '--wait', '--timeout', '30', '--json']);
    expect(r.code).to.equal(1);
    const j = JSON.parse(r.out.join('\n'));
    expect(j).to.include({ ok: false, timedOut: true, waited: true });
    expect(j.nodes[0]).to.include({ name: 'b0', outcome: 'stalled', state: '-', bootAction: 'install' });
    expect(j.nodes[0].reason).to.match(/no install report/);
    h.close();
  });

  it('status --watch prints changed rows as plain lines when not on a terminal', async () => {
    const dir = tmpDir();
    let t = Date.parse('2030-01-01T00:00:00.000Z');
    const h = harness(dir, { now: () => new Date(t) });
    await h.run(['node', 'add', 'w0', '--mac', '52:54:00:00:06:00', '--ip', '10.9.3.1']);
    const { runStatus } = await import('../../server/cli/status.js');
    const out: string[] = [];
    const ac = new AbortController();
    let n = 0;
    const ctx = {
      dataDir: () => ensureDataDir(dir),
      inventory: () => h.inventory,
      configFile: () => undefined,
      config: () => loadConfig({ dataDir: dir, env: {} }),
      out: (s: string) => out.push(s),
      err: () => undefined,
      isTTY: false,
      setExitCode: () => undefined,
    };
    await runStatus(
      ctx,
      { watch: true, interval: 1, stalledAfter: 100 },
      {
        now: () => new Date(t),
        sleep: async () => {
          t += 1000;
          n++;
          const at = new Date(t).toISOString();
          if (n === 2) h.inventory.setInstall('w0' as NodeName, { state: 'writing', bytesDone: 1, bytesTotal: 100, startedAt: at, updatedAt: at });
          if (n === 3) h.inventory.setInstall('w0' as NodeName, { state: 'writing', bytesDone: 2, bytesTotal: 100, startedAt: at, updatedAt: at });
          if (n === 5) ac.abort();
        },
      },
      ac.signal,
    );
    expect(out).to.have.length(2);
    expect(out[0]).to.match(/^2030-01-01T00:00:00Z w0 boot=os state=- last="added/);
    expect(out[1]).to.match(/^2030-01-01T00:00:02Z w0 boot=os state=writing 1\.0%/);
    h.close();
  });
});

describe('kickswarm reinstall and status (CLI)', function () {
  // Six CLI runs, each bounded by the helper's own 60 s limit: on a busy machine
  // starting the CLI from source takes seconds, so one limit for all six was too tight.
  this.timeout(6 * 60_000);
  after(cleanupTmpDirs);

  it('reinstall --all --power none, then status --json', () => {
    const dir = tmpDir();
    expect(kickswarm(dir, ['node', 'add', 'compute-0-0', '--mac', '52:54:00:00:07:00', '--ip', '10.9.4.1']).code).to.equal(0);
    expect(kickswarm(dir, ['node', 'add', 'compute-0-1', '--mac', '52:54:00:00:07:01', '--ip', '10.9.4.2']).code).to.equal(0);
    const r = kickswarm(dir, ['reinstall', '--all', '--power', 'none']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('2 node(s) set to install: compute-0-0 compute-0-1');
    expect(r.stdout).to.contain('reboot these nodes now');
    const s = kickswarm(dir, ['status', '--json']);
    expect(s.code, s.stderr).to.equal(0);
    const j = JSON.parse(s.stdout);
    expect(j.nodes.map((n: { name: string; bootAction: string; state: string }) => [n.name, n.bootAction, n.state])).to.deep.equal([
      ['compute-0-0', 'install', '-'],
      ['compute-0-1', 'install', '-'],
    ]);
    expect(j.nodes[0].lastEvent.message).to.equal('reinstall requested (power none)');
    expect(j.summary).to.include({ total: 2, idle: 2 });
    const bad = kickswarm(dir, ['reinstall', '--all', '--power', 'wol']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/unknown power driver "wol"/);
    const none = kickswarm(dir, ['reinstall', '--power', 'none']);
    expect(none.code).to.equal(2);
  });
});
