import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { kickswarm, kickswarmSpawn } from '../helpers/cli.js';
import { npmGet } from '../helpers/tftp.js';
import { parseIpv4, parseMac } from '../../protocol/node.js';
import { bootConfigOf } from '../../server/demo/boot-config.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

/** Collects a child's stdout and resolves when a line matches. */
function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} in: ${buf}`)), timeoutMs);
    const on = (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', on);
        resolve(m);
      }
    };
    child.stdout!.on('data', on);
  });
}

describe('kickswarm serve as a user runs it', function () {
  this.timeout(90_000);
  let dir: string;
  let serve: ChildProcess;
  let http: string;
  let tftpPort: number;

  before(async () => {
    dir = tmpDir();
    serve = kickswarmSpawn(dir, ['serve', '--listen', '127.0.0.1', '--http-port', '0', '--tftp-port', '0', '--log-level', 'warn']);
    serve.stderr!.on('data', (b: Buffer) => process.env.KICKSWARM_TEST_LOG && process.stderr.write(b));
    const m = await waitForLine(serve, /serving (http:\/\/127\.0\.0\.1:\d+) \(HTTP \d+, TFTP (\d+)\)/);
    http = m[1]!;
    tftpPort = Number(m[2]);
  });
  after(async () => {
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('exit', r));
    cleanupTmpDirs();
  });

  it('made the data dir with the inventory, token, profiles and templates', () => {
    for (const f of ['inventory.sqlite', 'api-token', 'profiles/compute.yaml', 'templates/kickstart.hbs', 'tftpboot']) {
      expect(fs.existsSync(path.join(dir, f)), f).to.equal(true);
    }
    expect(fs.statSync(path.join(dir, 'api-token')).mode & 0o077).to.equal(0);
  });

  it('sees CLI changes at once: node add + boot set -> TFTP config and kickstart', async () => {
    expect(kickswarm(dir, ['node', 'add', 'compute-0-0', '--mac', '52:54:00:aa:00:01', '--ip', '127.0.2.1']).code).to.equal(0);
    expect((await npmGet(tftpPort, 'pxelinux.cfg/01-52-54-00-aa-00-01')).toString()).to.match(/localboot 0/);
    const fromNode = new Agent({ localAddress: '127.0.2.1' });
    const ks = (session?: string) =>
      request(`${http}/install/sbin/kickstart.cgi`, {
        dispatcher: fromNode,
        headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:00:aa:00:01', ...(session ? { 'X-Kickswarm-Session': session } : {}) },
      });
    const refused = await ks();
    expect(refused.statusCode).to.equal(403);
    expect(await refused.body.text()).to.match(/session token is required \(node compute-0-0 is not installing\)/);
    expect(kickswarm(dir, ['boot', 'set', 'compute-0-0', '--action', 'install']).code).to.equal(0);
    // Asked for from another address (127.0.0.1), the config carries no session token ...
    const cfg = (await npmGet(tftpPort, 'pxelinux.cfg/7F000201')).toString();
    expect(cfg).to.contain(`ks=${http}/install/sbin/kickstart.cgi kickswarm.frontend=${http}`);
    expect(cfg).to.not.contain('session');
    // ... from the node's own address it does, in the ks= URL and for the installer.
    const own = await bootConfigOf({ host: '127.0.0.1', port: tftpPort }, parseMac('52:54:00:aa:00:01'), parseIpv4('127.0.2.1'));
    const session = own.session!;
    expect(session).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(own.text).to.contain(`ks=${http}/install/sbin/kickstart.cgi?session=${session} kickswarm.session=${session} kickswarm.frontend=${http}`);
    expect((await ks()).statusCode, 'no token').to.equal(403);
    const fromElsewhere = await request(`${http}/install/sbin/kickstart.cgi`, { headers: { 'X-Kickswarm-Session': session } });
    expect(fromElsewhere.statusCode, 'the token from another address').to.equal(403);
    await fromElsewhere.body.dump();
    const served = await ks(session);
    expect(served.statusCode).to.equal(200);
    const body = await served.body.text();
    const rendered = kickswarm(dir, ['profile', 'render', 'compute-0-0']);
    expect(rendered.stdout, 'profile render prints exactly what kickstart.cgi serves').to.equal(body);
    expect(rendered.code, rendered.stderr).to.equal(0);
    expect(rendered.stdout).to.match(/^network .*--hostname=compute-0-0/m);
    // The flip to os ends the session: replaying the token is refused.
    const flip = await request(`${http}/install/sbin/public/setPxeboot.cgi?action=os`, { dispatcher: fromNode, headers: { 'X-Kickswarm-Session': session } });
    expect(flip.statusCode).to.equal(200);
    await flip.body.dump();
    const replay = await ks(session);
    expect(replay.statusCode).to.equal(403);
    expect(await replay.body.text()).to.contain('unknown or ended session token');
    const replayFlip = await request(`${http}/install/sbin/public/setPxeboot.cgi?action=install`, { dispatcher: fromNode, headers: { 'X-Kickswarm-Session': session } });
    expect(replayFlip.statusCode).to.equal(403);
    await replayFlip.body.dump();
    await fromNode.close();
  });

  it('serves an edited template within seconds and keeps the last good set when an edit breaks', async () => {
    const tpl = path.join(dir, 'templates/kickstart.hbs');
    const original = fs.readFileSync(tpl, 'utf8');
    const token = fs.readFileSync(path.join(dir, 'api-token'), 'utf8').trim();
    // A fresh connection per poll: a kept-alive one can be closed by the server just as a late client reuses it.
    const fresh = new Agent({ pipelining: 0 });
    const status = async () =>
      (await (await request(`${http}/api/v1/profiles/status`, { dispatcher: fresh, headers: { authorization: `Bearer ${token}` } })).body.json()) as {
        ok: boolean;
        generation: number;
        errors: { file: string; line?: number }[];
      };
    const render = () => kickswarm(dir, ['profile', 'render', 'compute-0-0']).stdout;

    // Polled on the server's reload (cheap); the CLI, seconds to start on a busy machine, runs once after.
    const before = (await status()).generation;
    fs.writeFileSync(tpl, original.replace('text\n', 'text\n# edited by the admin\n'));
    await until('the edit to be loaded', async () => {
      const st = await status();
      return st.ok && st.generation > before;
    });
    expect(render()).to.include('# edited by the admin');

    fs.writeFileSync(tpl, original.replace('text\n', 'text\n{{attrs.no_such_attribute}}\n'));
    await until('the broken edit to be reported', async () => !(await status()).ok);
    const s = await status();
    expect(s.errors[0]!.file).to.equal('templates/kickstart.hbs');
    expect(s.errors[0]!.line).to.be.a('number');
    const check = kickswarm(dir, ['profile', 'check']);
    expect(check.code).to.equal(1);
    expect(check.stderr).to.match(/templates\/kickstart\.hbs:\d+/);

    fs.writeFileSync(tpl, original);
    await until('the fix to be served', async () => (await status()).ok);
    await fresh.close();
    expect(kickswarm(dir, ['profile', 'check']).code).to.equal(0);
  });

  it('discovers unknown MACs that PXE-boot while `kickswarm discover` runs', async () => {
    const disc = kickswarmSpawn(dir, ['discover', '--appliance', 'compute', '--rack', '1', '--first-ip', '127.0.3.10', '--count', '2', '--timeout', '30']);
    await waitForLine(disc, /discovering compute nodes in rack 1/);
    await npmGet(tftpPort, 'pxelinux.cfg/01-52-54-00-bb-00-01').catch(() => undefined);
    await npmGet(tftpPort, 'pxelinux.cfg/01-52-54-00-bb-00-02').catch(() => undefined);
    const lines = await waitForLine(disc, /discovered compute-1-0[\s\S]*discovery closed: 2/);
    expect(lines[0]).to.match(/discovered compute-1-0: mac 52:54:00:bb:00:01 ip 127\.0\.3\.10/);
    await new Promise((r) => disc.once('exit', r));
    const nodes = JSON.parse(kickswarm(dir, ['node', 'list', '--appliance', 'compute', '--json']).stdout) as { name: string; ip: string; bootAction: string }[];
    expect(nodes.filter((n) => n.name.startsWith('compute-1-')).map((n) => [n.name, n.ip, n.bootAction])).to.deep.equal([
      ['compute-1-0', '127.0.3.10', 'install'],
      ['compute-1-1', '127.0.3.11', 'install'],
    ]);
    // Discovery is closed: another unknown MAC stays unknown.
    await npmGet(tftpPort, 'pxelinux.cfg/01-52-54-00-bb-00-03').catch(() => undefined);
    expect(kickswarm(dir, ['node', 'show', 'compute-1-2']).code).to.equal(1);
  });

  it('prints DHCP configs for the inventory', () => {
    const r = kickswarm(dir, ['dhcp-config', '--format', 'dnsmasq']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/dhcp-host=52:54:00:aa:00:01,127\.0\.2\.1/);
    expect(kickswarm(dir, ['dhcp-config', '--format', 'bogus']).code).to.equal(2);
  });
});
