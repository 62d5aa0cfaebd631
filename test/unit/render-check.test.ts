import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Command } from 'commander';
import { InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import type { CliContext } from '../../server/cli/context.js';
import { dhcpCommand } from '../../server/cli/dhcp.js';
import { makeProfileCommand } from '../../server/cli/profile.js';
import { loadConfig } from '../../server/config/load.js';
import { dataDirPaths } from '../../server/datadir.js';
import { Inventory } from '../../server/inventory/store.js';
import { checkProfiles, formatProblem } from '../../server/render/check.js';
import { dataDirWith, node, removeDir, SHA, sampleEnv, tempDataDir } from '../fixtures/render/sample.js';

describe('render: checkProfiles', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));
  const dir = (files: Record<string, string> = {}) => {
    const d = dataDirWith(files);
    dirs.push(d);
    return d;
  };

  it('finds nothing wrong with the shipped set and good nodes', () => {
    expect(checkProfiles(dir(), sampleEnv(), [node(), node({ name: 'login-0-0' as NodeName, appliance: 'login' })])).to.deep.equal([]);
  });

  it('names node, file and line for each failing node', () => {
    const d = dir({ 'templates/snippets/hostname.hbs': '{{#if attrs.pin}}\necho {{attrs.pin_value}}\n{{/if}}\n' });
    const problems = checkProfiles(d, sampleEnv(), [
      node(),
      node({ name: 'compute-0-4' as NodeName, attrs: { pin: 'yes' } }),
      node({ name: 'nas-0-0' as NodeName, appliance: 'nas' }),
      node({ name: 'compute-0-5' as NodeName, attrs: { 'image.name': 'nosuch' } }),
    ]);
    expect(problems.map(formatProblem)).to.deep.equal([
      'node compute-0-4: templates/snippets/hostname.hbs:2: "pin_value" is not defined (column 8; guard optional values with {{#if}})',
      'node nas-0-0: profiles/nas.yaml: no profile for appliance "nas" of node nas-0-0 (profiles/nas.yaml)',
      'node compute-0-5: profiles/compute.yaml: image nosuch used by node compute-0-5 is not in the image store (add it with: kickswarm image add FILE --name nosuch)',
    ]);
  });

  it('returns the load problems of a broken set', () => {
    const problems = checkProfiles(dir({ 'profiles/compute.yaml': 'extends: base\nbogus: 1\n' }), sampleEnv(), [node()]);
    expect(problems).to.have.length(1);
    expect(problems[0]).to.include({ file: 'profiles/compute.yaml', line: 2 });
  });
});

/** A CliContext over a temp data dir, capturing output. */
function cli(root: string) {
  const out: string[] = [];
  const err: string[] = [];
  let code = 0;
  const inv = new Inventory(dataDirPaths(root).db);
  fs.writeFileSync(path.join(root, 'kickswarm.yaml'), 'frontendUrl: http://10.1.1.1:8080\nadvertiseAddress: 10.1.1.1\n');
  const ctx: CliContext = {
    dataDir: () => dataDirPaths(root),
    inventory: () => inv,
    configFile: () => undefined,
    config: (o) => loadConfig({ dataDir: root, env: {}, overrides: o }),
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    isTTY: false,
    setExitCode: (c) => (code = c),
  };
  const program = new Command('kickswarm').exitOverride();
  makeProfileCommand({ images: () => (name) => (name === 'compute' ? { name, sha256: SHA, rawSize: 42 } : undefined) })(program, ctx);
  dhcpCommand(program, ctx);
  return {
    inv,
    out,
    err,
    code: () => code,
    run: (...args: string[]) => program.parseAsync(args, { from: 'user' }),
    close: () => inv.close(),
  };
}

describe('render: profile and dhcp-config commands', () => {
  let root: string;
  let c: ReturnType<typeof cli>;
  beforeEach(() => {
    root = tempDataDir();
    c = cli(root);
    c.inv.addNode({ name: 'compute-0-0' as NodeName, mac: '52:54:00:00:00:10' as Mac, ip: '10.1.1.10' as Ipv4, appliance: 'compute', attrs: { 'image.name': 'compute' } });
    c.inv.addNode({ name: 'login-0-0' as NodeName, mac: '52:54:00:00:00:20' as Mac, ip: '10.1.1.20' as Ipv4, appliance: 'login' });
  });
  afterEach(() => {
    c.close();
    removeDir(root);
  });

  it('profile render prints the kickstart exactly', async () => {
    await c.run('profile', 'render', 'compute-0-0');
    expect(c.out).to.have.length(1);
    expect(c.out[0]).to.match(/^# kickswarm kickstart for compute-0-0 /);
    expect(c.out[0]).to.match(/--size=42\n%end\n$/);
    expect(c.out[0]).to.contain('network --bootproto=dhcp --device=52:54:00:00:00:10 --hostname=compute-0-0\n');
  });

  it('profile render of an unknown node is NotFoundError', async () => {
    let e: unknown;
    await c.run('profile', 'render', 'nope-0-0').catch((x) => (e = x));
    expect(e).to.be.instanceOf(NotFoundError);
  });

  it('profile check prints ok with counts, or one line per failure and exit 1', async () => {
    await c.run('profile', 'check');
    expect(c.out).to.deep.equal(['ok: 2 nodes, 3 profiles']);
    expect(c.code()).to.equal(0);
    c.inv.addNode({ name: 'gpu-0-0' as NodeName, mac: '52:54:00:00:00:30' as Mac, ip: '10.1.1.30' as Ipv4, appliance: 'gpu' });
    await c.run('profile', 'check');
    expect(c.code()).to.equal(1);
    expect(c.err).to.deep.equal(['node gpu-0-0: profiles/gpu.yaml: no profile for appliance "gpu" of node gpu-0-0 (profiles/gpu.yaml)', '1 problem']);
  });

  it('dhcp-config prints dnsmasq (default) and isc, and refuses other formats', async () => {
    await c.run('dhcp-config');
    expect(c.out[0]).to.contain('dhcp-host=52:54:00:00:00:10,10.1.1.10,compute-0-0\n');
    await c.run('dhcp-config', '--format', 'isc');
    expect(c.out[1]).to.contain('host login-0-0 {\n  hardware ethernet 52:54:00:00:00:20;\n  fixed-address 10.1.1.20;');
    expect(c.out[1]).to.contain('next-server 10.1.1.1;');
    let e: unknown;
    await c.run('dhcp-config', '--format', 'kea').catch((x) => (e = x));
    expect(e).to.be.instanceOf(InvalidInputError);
  });
});
