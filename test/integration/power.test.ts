/**
 * The ipmi and redfish power drivers against emulated BMCs: OpenIPMI's
 * ipmi_sim (IPMI 2.0 lanplus, through the real ipmitool) and a Redfish BMC
 * that checks credentials, ETags and allowable values. Runs the CLI as a user
 * would: `kickswarm reinstall --power ...` and `kickswarm power ...`.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { kickswarm, kickswarmAsync } from '../helpers/cli.js';
import { IpmiSim, freeUdpPort } from '../helpers/ipmi-sim.js';
import { RedfishBmc } from '../helpers/redfish-bmc.js';
import { skipBecause } from '../helpers/skip.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function addNode(dir: string, name: string, i: number, attrs: Record<string, string>): void {
  const r = kickswarm(dir, [
    'node',
    'add',
    name,
    '--mac',
    `52:54:00:77:00:${String(i).padStart(2, '0')}`,
    '--ip',
    `10.77.0.${i + 10}`,
    ...Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
  ]);
  expect(r.code, r.stderr).to.equal(0);
}

interface Row {
  name: string;
  ok: boolean;
  state: string | null;
  error: string | null;
}

describe('power drivers against emulated BMCs', function () {
  this.timeout(300_000);
  after(cleanupTmpDirs);

  describe('ipmi (ipmi_sim + ipmitool lanplus)', () => {
    let sim: IpmiSim;
    let dir: string;
    let deadPort: number;

    before(async function () {
      if (!has('ipmi_sim') || !has('ipmitool')) skipBecause(this, 'ipmi_sim and ipmitool are not installed (Debian: openipmi ipmitool)');
      sim = new IpmiSim(tmpDir(), 'admin', 'p@ss;$(id)`x`');
      await sim.start();
      deadPort = await freeUdpPort();
      dir = tmpDir();
      const bmc = { 'ipmi.host': '127.0.0.1', 'ipmi.port': String(sim.port), 'ipmi.user': 'admin' };
      addNode(dir, 'ipmi-ok', 1, { ...bmc, 'ipmi.password': sim.password, 'power.driver': 'ipmi' });
      addNode(dir, 'ipmi-refuses', 2, { ...bmc, 'ipmi.password': 'wrong' });
      addNode(dir, 'ipmi-silent', 3, { ...bmc, 'ipmi.port': String(deadPort), 'ipmi.password': 'x' });
    });
    after(() => sim?.close());

    it('reinstall sets the next boot to PXE, then power-cycles; a BMC that refuses or is silent fails only its node', async () => {
      const r = await kickswarmAsync(dir, ['reinstall', 'ipmi-ok', 'ipmi-refuses', 'ipmi-silent', '--power', 'ipmi', '--power-timeout', '15', '--json']);
      expect(r.code, r.stderr).to.equal(1);
      const out = JSON.parse(r.stdout) as { nodes: { name: string; outcome: string; reason: string | null }[] };
      const by = new Map(out.nodes.map((n) => [n.name, n]));
      expect(by.get('ipmi-ok')!.outcome, r.stdout).to.equal('started');
      expect(by.get('ipmi-refuses')!.outcome).to.equal('failed');
      expect(by.get('ipmi-refuses')!.reason).to.match(/^node ipmi-refuses: ipmitool -H 127\.0\.0\.1 chassis bootdev pxe failed/);
      expect(by.get('ipmi-silent')!.outcome).to.equal('failed');
      expect(by.get('ipmi-silent')!.reason).to.contain('node ipmi-silent');
      expect(r.stdout + r.stderr).not.to.contain(sim.password);
      // The BMC powers the chassis back on a second after the cycle's power-off.
      await until('the cycle to power the chassis back on', () => sim.calls().includes('set power 1'), 20_000, 100);
      const calls = sim.calls().filter((c) => c.startsWith('set'));
      expect(calls).to.deep.equal(['set boot pxe', 'set power 0', 'set power 1']);
      const show = kickswarm(dir, ['node', 'show', 'ipmi-ok', '--json']);
      expect(show.stdout).to.contain('power cycled (ipmi)');
    });

    it('power status / off / on through the node attribute power.driver', async () => {
      const st = await kickswarmAsync(dir, ['power', 'status', 'ipmi-ok', '--json']);
      expect(st.code, st.stderr).to.equal(0);
      expect((JSON.parse(st.stdout) as Row[])[0]).to.include({ name: 'ipmi-ok', ok: true, state: 'on' });
      expect((await kickswarmAsync(dir, ['power', 'off', 'ipmi-ok'])).code).to.equal(0);
      expect(JSON.parse((await kickswarmAsync(dir, ['power', 'status', 'ipmi-ok', '--json'])).stdout)[0].state).to.equal('off');
      expect((await kickswarmAsync(dir, ['power', 'on', 'ipmi-ok'])).code).to.equal(0);
      expect(JSON.parse((await kickswarmAsync(dir, ['power', 'status', 'ipmi-ok', '--json'])).stdout)[0].state).to.equal('on');
      const none = await kickswarmAsync(dir, ['power', 'status', 'ipmi-refuses']);
      expect(none.code).to.equal(1);
      expect(none.stdout).to.contain('no power driver');
    });
  });

  describe('redfish (emulated BMC over HTTPS)', () => {
    let good: RedfishBmc;
    let off: RedfishBmc;
    let silent: RedfishBmc;
    let multi: RedfishBmc;
    let dir: string;

    before(async function () {
      if (!has('openssl')) skipBecause(this, 'openssl is not installed (Debian: openssl)');
      good = new RedfishBmc('root', 'calvin');
      off = new RedfishBmc('root', 'calvin', [{ id: 'System.Embedded.1', powerState: 'Off' }]);
      silent = new RedfishBmc('root', 'calvin');
      multi = new RedfishBmc('root', 'calvin', [{ id: 'a' }, { id: 'b', resetTypes: ['On', 'ForceOff', 'PowerCycle'] }]);
      const [g, o, s, m] = await Promise.all([good.start(), off.start(), silent.start(), multi.start()]);
      silent.mode = 'hang';
      dir = tmpDir();
      const creds = { 'redfish.user': 'root', 'redfish.password': 'calvin', 'redfish.insecure': 'true' };
      addNode(dir, 'rf-ok', 11, { ...creds, 'redfish.host': g });
      addNode(dir, 'rf-off', 12, { ...creds, 'redfish.host': o });
      addNode(dir, 'rf-refuses', 13, { ...creds, 'redfish.host': g, 'redfish.password': 'wrong' });
      addNode(dir, 'rf-silent', 14, { ...creds, 'redfish.host': s });
      addNode(dir, 'rf-multi', 15, { ...creds, 'redfish.host': m });
      addNode(dir, 'rf-multi-b', 16, { ...creds, 'redfish.host': m, 'redfish.system': '/redfish/v1/Systems/b', 'power.driver': 'redfish' });
      addNode(dir, 'rf-verify', 17, { 'redfish.user': 'root', 'redfish.password': 'calvin', 'redfish.host': g, 'power.driver': 'redfish' });
    });
    after(async () => Promise.all([good, off, silent, multi].map((b) => b?.close())));

    it('reinstall sets Boot to Pxe once (with If-Match) and restarts; refusing and silent BMCs fail only their nodes', async () => {
      const r = await kickswarmAsync(dir, ['reinstall', 'rf-ok', 'rf-off', 'rf-refuses', 'rf-silent', 'rf-multi', 'rf-multi-b', '--power', 'redfish', '--power-timeout', '3', '--json']);
      expect(r.code, r.stderr).to.equal(1);
      const out = JSON.parse(r.stdout) as { nodes: { name: string; outcome: string; reason: string | null }[] };
      const by = new Map(out.nodes.map((n) => [n.name, n]));
      expect(by.get('rf-ok')!.outcome).to.equal('started');
      expect(by.get('rf-off')!.outcome).to.equal('started');
      expect(by.get('rf-multi-b')!.outcome).to.equal('started');
      expect(by.get('rf-refuses')!.reason).to.match(/^node rf-refuses: redfish GET https:\/\/127\.0\.0\.1:\d+\/redfish\/v1\/Systems failed: HTTP 401/);
      expect(by.get('rf-silent')!.reason).to.match(/^node rf-silent: redfish GET .* failed: no answer within 3 s/);
      expect(by.get('rf-multi')!.reason).to.match(/lists 2 systems; set attribute redfish.system to one of: \/redfish\/v1\/Systems\/a \/redfish\/v1\/Systems\/b/);
      expect(r.stdout + r.stderr).not.to.contain('calvin');

      const ok = good.requests.filter((q) => q.authorized).map((q) => `${q.method} ${q.path}`);
      expect(ok).to.deep.equal(['GET /redfish/v1/Systems', 'GET /redfish/v1/Systems/1', 'PATCH /redfish/v1/Systems/1', 'POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset']);
      const patch = good.requests.find((q) => q.method === 'PATCH')!;
      expect(patch.ifMatch).to.equal('W/"1"');
      expect(patch.body).to.deep.equal({ Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });
      expect(good.requests.filter((q) => q.authorized).at(-1)!.body).to.deep.equal({ ResetType: 'ForceRestart' });
      expect(good.systems.get('1')!.boot).to.deep.equal({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' });
      // A system that is off is powered on; a BMC without ForceRestart gets PowerCycle.
      expect(off.requests.at(-1)!.body).to.deep.equal({ ResetType: 'On' });
      expect(off.systems.get('System.Embedded.1')!.powerState).to.equal('On');
      expect(multi.requests.at(-1)).to.deep.include({ path: '/redfish/v1/Systems/b/Actions/ComputerSystem.Reset', body: { ResetType: 'PowerCycle' } });
    });

    it('power status / off / on, and a self-signed BMC certificate is refused unless redfish.insecure is set', async () => {
      const st = await kickswarmAsync(dir, ['power', 'status', 'rf-multi-b', 'rf-verify', '--json']);
      expect(st.code).to.equal(1);
      const rows = JSON.parse(st.stdout) as Row[];
      expect(rows[0]).to.include({ name: 'rf-multi-b', ok: true, state: 'on' });
      expect(rows[1]!.ok).to.equal(false);
      expect(rows[1]!.error).to.match(/^node rf-verify: redfish GET .* failed: .*(SELF_SIGNED|self.signed|certificate)/i);
      expect((await kickswarmAsync(dir, ['power', 'off', 'rf-multi-b'])).code).to.equal(0);
      expect(multi.systems.get('b')!.powerState).to.equal('Off');
      expect(JSON.parse((await kickswarmAsync(dir, ['power', 'status', 'rf-multi-b', '--json'])).stdout)[0].state).to.equal('off');
      expect((await kickswarmAsync(dir, ['power', 'on', 'rf-multi-b'])).code).to.equal(0);
      expect(multi.systems.get('b')!.powerState).to.equal('On');
    });
  });
});
