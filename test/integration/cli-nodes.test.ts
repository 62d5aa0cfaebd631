import { expect } from 'chai';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('kickswarm CLI: nodes and boot actions', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(cleanupTmpDirs);

  it('adds nodes and lists them as a table and as JSON', () => {
    let r = kickswarm(dir, ['node', 'add', 'compute-0-0', '--mac', '52:54:00:00:00:01', '--ip', '10.1.1.1', '--rack', '0', '--rank', '0', '--attr', 'ipmi.host=10.2.1.1']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/added compute-0-0/);
    r = kickswarm(dir, ['node', 'add', 'login-0-0', '--mac', '52-54-00-00-00-02', '--ip', '10.1.1.2', '--appliance', 'login']);
    expect(r.code, r.stderr).to.equal(0);
    r = kickswarm(dir, ['node', 'list']);
    expect(r.stdout).to.match(/^NAME\s+MAC\s+IP/);
    expect(r.stdout).to.match(/login-0-0\s+52:54:00:00:00:02\s+10\.1\.1\.2\s+login/);
    r = kickswarm(dir, ['node', 'list', '--json']);
    const nodes = JSON.parse(r.stdout) as { name: string; attrs: Record<string, string> }[];
    expect(nodes.map((n) => n.name)).to.deep.equal(['compute-0-0', 'login-0-0']);
    expect(nodes[0]!.attrs).to.deep.equal({ 'ipmi.host': '10.2.1.1' });
  });

  it('rejects malformed input with one line and exit 2, changing nothing', () => {
    for (const args of [
      ['node', 'add', 'compute-0-9', '--mac', '52:54:00:00:00', '--ip', '10.1.1.9'],
      ['node', 'add', 'compute-0-9', '--mac', '52:54:00:00:00:09', '--ip', '10.1.1.999'],
      ['node', 'add', 'Compute_9', '--mac', '52:54:00:00:00:09', '--ip', '10.1.1.9'],
      ['node', 'add', 'compute-0-9', '--mac', '52:54:00:00:00:09', '--ip', '10.1.1.9', '--attr', 'novalue'],
      ['boot', 'set', 'compute-0-0', '--action', 'reboot'],
      ['boot', 'set', '--action', 'install'],
    ]) {
      const r = kickswarm(dir, args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
    }
    expect(JSON.parse(kickswarm(dir, ['node', 'list', '--json']).stdout)).to.have.length(2);
  });

  it('refuses duplicates naming the conflicting node (exit 1)', () => {
    const r = kickswarm(dir, ['node', 'add', 'compute-0-5', '--mac', '52:54:00:00:00:01', '--ip', '10.1.1.5']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/already belongs to node compute-0-0/);
  });

  it('sets boot actions for names, an appliance and --all, and shows the history', () => {
    expect(kickswarm(dir, ['boot', 'set', '--appliance', 'compute', '--action', 'install']).stdout).to.match(/1 node\(s\) set to install: compute-0-0/);
    expect(kickswarm(dir, ['boot', 'set', 'login-0-0', '--action', 'capture']).code).to.equal(0);
    const shown = JSON.parse(kickswarm(dir, ['node', 'show', 'login-0-0', '--json']).stdout) as { bootAction: string; events: { kind: string }[] };
    expect(shown.bootAction).to.equal('capture');
    expect(shown.events.map((e) => e.kind)).to.include('boot');
    expect(kickswarm(dir, ['boot', 'set', '--all', '--action', 'os']).stdout).to.match(/2 node\(s\) set to os/);
    expect(kickswarm(dir, ['node', 'show', 'compute-0-0']).stdout).to.match(/boot action: os[\s\S]*boot action install -> os/);
    const missing = kickswarm(dir, ['boot', 'set', 'compute-0-0', 'nope-1', '--action', 'install']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/no node named nope-1/);
  });

  it('masks secret attributes in show, show --json, list --json and add --json; node get and --show-secrets read them', () => {
    const secrets = { 'bmc.password': 'Sup3r-s3cret', rootpw: '$6$saltsalt$hashhashhash', 'api.token': 'tok-abcdef', 'luks.key': 'k3y-material' };
    const args = ['node', 'add', 'secret-0-0', '--mac', '52:54:00:00:00:31', '--ip', '10.1.1.31', '--attr', 'bmc.host=10.2.1.31', '--json'];
    for (const [k, v] of Object.entries(secrets)) args.push('--attr', `${k}=${v}`);
    const added = kickswarm(dir, args);
    expect(added.code, added.stderr).to.equal(0);
    const outputs = [added.stdout];
    const masked = { 'bmc.host': '10.2.1.31', 'bmc.password': '********', rootpw: '********', 'api.token': '********', 'luks.key': '********' };
    expect((JSON.parse(added.stdout) as { attrs: unknown }).attrs).to.deep.equal(masked);

    const show = kickswarm(dir, ['node', 'show', 'secret-0-0']);
    expect(show.code, show.stderr).to.equal(0);
    expect(show.stdout).to.match(/^ {2}bmc\.password = \*{8}$/m);
    expect(show.stdout).to.match(/^ {2}bmc\.host = 10\.2\.1\.31$/m);
    expect(show.stdout).to.contain('kickswarm node get secret-0-0 KEY');
    outputs.push(show.stdout);
    const showJson = kickswarm(dir, ['node', 'show', 'secret-0-0', '--json']);
    expect((JSON.parse(showJson.stdout) as { attrs: unknown }).attrs).to.deep.equal(masked);
    outputs.push(showJson.stdout);
    const list = kickswarm(dir, ['node', 'list', '--json']);
    expect((JSON.parse(list.stdout) as { name: string; attrs: unknown }[]).find((n) => n.name === 'secret-0-0')?.attrs).to.deep.equal(masked);
    outputs.push(list.stdout);
    for (const out of outputs) for (const v of Object.values(secrets)) expect(out).not.to.contain(v);

    // Read explicitly: the value as it is, for scripts.
    const get = kickswarm(dir, ['node', 'get', 'secret-0-0', 'bmc.password']);
    expect(get.code, get.stderr).to.equal(0);
    expect(get.stdout).to.equal('Sup3r-s3cret\n');
    const clear = kickswarm(dir, ['node', 'show', 'secret-0-0', '--json', '--show-secrets']);
    expect((JSON.parse(clear.stdout) as { attrs: unknown }).attrs).to.deep.equal({ 'bmc.host': '10.2.1.31', ...secrets });
    expect(kickswarm(dir, ['node', 'show', 'secret-0-0', '--show-secrets']).stdout).to.match(/^ {2}luks\.key = k3y-material$/m);
    const missing = kickswarm(dir, ['node', 'get', 'secret-0-0', 'bmc.user']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim()).to.equal('kickswarm: node secret-0-0 has no attribute bmc.user');
    expect(kickswarm(dir, ['node', 'get', 'secret-0-0', 'bad key']).code).to.equal(2);
    // The export is the inventory's backup: values as they are, so `node import` restores them.
    expect(kickswarm(dir, ['node', 'export', '--format', 'yaml']).stdout).to.contain('Sup3r-s3cret');
    expect(kickswarm(dir, ['node', 'remove', 'secret-0-0']).code).to.equal(0);
  });

  it('removes nodes; unknown names are an error', () => {
    expect(kickswarm(dir, ['node', 'remove', 'login-0-0']).code).to.equal(0);
    expect(kickswarm(dir, ['node', 'remove', 'login-0-0']).code).to.equal(1);
    expect(kickswarm(dir, ['node', 'show', 'login-0-0']).stderr).to.match(/no node named login-0-0/);
  });
});
