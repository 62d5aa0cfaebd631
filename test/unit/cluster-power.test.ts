import { expect } from 'chai';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { type ExecFn, type ExecOptions, createPowerDriver, defaultExec, parsePowerDriverName, splitTemplate } from '../../server/cluster/power.js';
import type { NodeRecord } from '../../server/inventory/types.js';
import { rejection } from '../helpers/rejection.js';

function node(name: string, attrs: Record<string, string> = {}): NodeRecord {
  return {
    name: name as NodeName,
    mac: '52:54:00:aa:bb:01' as Mac,
    ip: '10.1.1.7' as Ipv4,
    uuid: null,
    appliance: 'compute',
    rack: 0,
    rank: 7,
    attrs,
    bootAction: 'install',
    install: null,
    createdAt: '2030-01-01T00:00:00.000Z',
    updatedAt: '2030-01-01T00:00:00.000Z',
  };
}

interface Call {
  file: string;
  args: string[];
  opts: ExecOptions;
}

/** A fake exec that records calls and answers from a script. */
function fakeExec(answer: (c: Call) => { stdout?: string; stderr?: string; exitCode?: number } = () => ({})): { exec: ExecFn; calls: Call[] } {
  const calls: Call[] = [];
  const exec: ExecFn = async (file, args, opts) => {
    const c = { file, args, opts };
    calls.push(c);
    const a = answer(c);
    if (a.exitCode) throw Object.assign(new Error(`exit ${a.exitCode}`), { exitCode: a.exitCode, stdout: a.stdout ?? '', stderr: a.stderr ?? '' });
    return { stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
  };
  return { exec, calls };
}

describe('cluster: power drivers', () => {
  it('none runs nothing and is manual', async () => {
    const { exec, calls } = fakeExec();
    const d = createPowerDriver('none', { exec });
    await d.cycle(node('c0'));
    expect(d.manual).to.equal(true);
    expect(calls).to.have.length(0);
  });

  it('ipmi sets bootdev pxe, then cycles, through ipmitool lanplus with the password only in IPMI_PASSWORD', async () => {
    const { exec, calls } = fakeExec((c) => (c.args.at(-1) === 'status' ? { stdout: 'Chassis Power is on\n' } : {}));
    const d = createPowerDriver('ipmi', { exec, timeoutMs: 12_000 });
    await d.cycle(node('c0', { 'ipmi.host': '10.2.1.7', 'ipmi.user': 'ADMIN', 'ipmi.password': 'p@ss word;$(rm -rf /)', 'ipmi.port': '6230' }));
    const base = ['-I', 'lanplus', '-H', '10.2.1.7', '-p', '6230', '-U', 'ADMIN', '-E', '-N', '4', '-R', '2'];
    expect(calls.map((c) => c.file)).to.deep.equal(['ipmitool', 'ipmitool', 'ipmitool']);
    expect(calls.map((c) => c.args)).to.deep.equal([
      [...base, 'chassis', 'bootdev', 'pxe'],
      [...base, 'chassis', 'power', 'status'],
      [...base, 'chassis', 'power', 'cycle'],
    ]);
    for (const c of calls) {
      expect(c.opts).to.deep.equal({ timeoutMs: 12_000, env: { IPMI_PASSWORD: 'p@ss word;$(rm -rf /)' } });
      expect(c.args.join(' ')).not.to.contain('p@ss');
    }
    const bad = await rejection(d.cycle(node('c1', { 'ipmi.host': 'bmc', 'ipmi.user': 'u', 'ipmi.password': 'p', 'ipmi.port': '70000' })));
    expect(bad.message).to.contain('attribute ipmi.port "70000" is not a port number');
  });

  it('ipmi names the node and the missing attribute', async () => {
    const { exec, calls } = fakeExec();
    const d = createPowerDriver('ipmi', { exec });
    for (const [attrs, missing] of [
      [{}, 'ipmi.host'],
      [{ 'ipmi.host': 'bmc7' }, 'ipmi.user'],
      [{ 'ipmi.host': 'bmc7', 'ipmi.user': 'root' }, 'ipmi.password'],
    ] as const) {
      const err = await rejection(d.cycle(node('compute-0-7', attrs)));
      expect(err.code).to.equal('invalid_input');
      expect(err.message).to.contain('node compute-0-7').and.to.contain(`attribute ${missing}`);
    }
    expect(calls).to.have.length(0);
  });

  it('ipmi powers on a chassis that is off, and reports other failures with stderr', async () => {
    const off = fakeExec((c) => (c.args.at(-1) === 'status' ? { stdout: 'Chassis Power is off\n' } : {}));
    await createPowerDriver('ipmi', { exec: off.exec }).cycle(node('c0', { 'ipmi.host': 'bmc', 'ipmi.user': 'u', 'ipmi.password': 'p' }));
    expect(off.calls.map((c) => c.args.slice(-2).join(' '))).to.deep.equal(['bootdev pxe', 'power status', 'power on']);
    const bad = fakeExec(() => ({ exitCode: 1, stderr: 'Error: Unable to establish IPMI v2 / RMCP+ session' }));
    const err = await rejection(createPowerDriver('ipmi', { exec: bad.exec }).cycle(node('c9', { 'ipmi.host': 'bmc', 'ipmi.user': 'u', 'ipmi.password': 'p' })));
    expect(err.code).to.equal('unavailable');
    expect(err.message).to.match(/^node c9: ipmitool -H bmc chassis bootdev pxe failed: exit 1: Error: Unable to establish/);
    expect(bad.calls).to.have.length(1);
  });

  it('drivers without a BMC say which operations they cannot do', async () => {
    for (const name of ['none', 'ssh'] as const) {
      const err = await rejection(createPowerDriver(name, {}).status(node('c0')));
      expect(err.code).to.equal('invalid_input');
      expect(err.message).to.match(new RegExp(`^node c0: power driver ${name} cannot read the power state`));
    }
  });

  it('ssh reboots root@ip in batch mode, or ssh.user@ssh.host, and takes a dropped connection as success', async () => {
    const { exec, calls } = fakeExec((c) => (c.args.includes('admin@mgmt-7') ? { exitCode: 255, stderr: 'Connection to mgmt-7 closed by remote host.' } : {}));
    const d = createPowerDriver('ssh', { exec });
    await d.cycle(node('c0'));
    await d.cycle(node('c1', { 'ssh.host': 'mgmt-7', 'ssh.user': 'admin' }));
    expect(calls.map((c) => [c.file, ...c.args])).to.deep.equal([
      ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '--', 'root@10.1.1.7', 'reboot'],
      ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '--', 'admin@mgmt-7', 'reboot'],
    ]);
    const refused = fakeExec(() => ({ exitCode: 255, stderr: 'ssh: connect to host 10.1.1.7 port 22: Connection refused' }));
    expect((await rejection(createPowerDriver('ssh', { exec: refused.exec }).cycle(node('c2')))).message).to.contain('Connection refused');
  });

  it('ssh refuses host and user attributes that would be read as options', async () => {
    const { exec, calls } = fakeExec();
    const d = createPowerDriver('ssh', { exec });
    expect((await rejection(d.cycle(node('c0', { 'ssh.host': '-oProxyCommand=touch /tmp/x' })))).code).to.equal('invalid_input');
    expect((await rejection(d.cycle(node('c0', { 'ssh.user': '-oProxyCommand=x' })))).code).to.equal('invalid_input');
    expect(calls).to.have.length(0);
  });

  it('command substitutes tokens inside words: an attribute with shell metacharacters stays one argument', async () => {
    const { exec, calls } = fakeExec();
    const d = createPowerDriver('command', { exec, command: `/usr/local/bin/power-cycle {{name}} --ip={{ip}} {{mac}} "{{attr.pdu.port}}" 'lit {{rack}}'` });
    const evil = 'A1; rm -rf / $(reboot) `id` | tee x';
    await d.cycle(node('compute-0-7', { 'pdu.port': evil }));
    expect(calls[0]!.file).to.equal('/usr/local/bin/power-cycle');
    expect(calls[0]!.args).to.deep.equal(['compute-0-7', '--ip=10.1.1.7', '52:54:00:aa:bb:01', evil, 'lit 0']);
  });

  it('command refuses unknown tokens and a missing template up front, and a missing attribute per node', async () => {
    expect(() => createPowerDriver('command', { command: 'cycle {{hostname}}' })).to.throw(/unknown token \{\{hostname\}\}/);
    expect(() => createPowerDriver('command', {})).to.throw(/needs a template/);
    expect(() => createPowerDriver('command', { command: 'cycle "{{name}}' })).to.throw(/unclosed "/);
    const { exec } = fakeExec();
    const err = await rejection(createPowerDriver('command', { exec, command: 'cycle {{attr.pdu.port}}' }).cycle(node('c3')));
    expect(err.message).to.contain('node c3').and.to.contain('attribute pdu.port');
  });

  it('splits templates like a shell would, without running one', () => {
    expect(splitTemplate(`a  b\\ c "d e" 'f "g"' h"i"j ''`)).to.deep.equal(['a', 'b c', 'd e', 'f "g"', 'hij', '']);
    expect(parsePowerDriverName('IPMI')).to.equal('ipmi');
    expect(() => parsePowerDriverName('wol')).to.throw(/unknown power driver/);
    expect(parsePowerDriverName('Redfish')).to.equal('redfish');
  });

  it('the real exec runs without a shell, reports exit codes and kills on timeout', async () => {
    const ok = await defaultExec(process.execPath, ['-e', 'process.stdout.write(process.argv[1] + "|" + process.env.X)', '$(echo hi); `id`'], { timeoutMs: 10_000, env: { X: 'y' } });
    expect(ok.stdout).to.equal('$(echo hi); `id`|y');
    const fail = (await rejection(defaultExec(process.execPath, ['-e', 'console.error("bad"); process.exit(3)'], { timeoutMs: 10_000 }))) as Error & { exitCode?: number; stderr?: string };
    expect(fail.exitCode).to.equal(3);
    expect(fail.stderr).to.contain('bad');
    const slow = (await rejection(defaultExec(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 300 }))) as Error & { signal?: string };
    expect(slow.signal).to.equal('SIGKILL');
  });
});
