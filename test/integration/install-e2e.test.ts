import { expect } from 'chai';
import fs from 'node:fs';
import { nodeStatus } from '../../server/cluster/status.js';
import { TestCluster, type TestNode } from '../helpers/cluster.js';
import { sha256Prefix } from '../helpers/hash.js';
import { cleanupTmpDirs } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { freePort } from '../../bench/lib/ports.js';

/** A profile with no chrooted %post, so targets stay byte-identical to the image. */
const PLAIN = `template: kickstart.hbs
attributes:
  clearpart: --all --initlabel
  bootloader: --location=mbr
post:
  - log-install --nochroot
`;

describe('end to end: kickswarm-install run against a real frontend', function () {
  this.timeout(120_000);
  let c: TestCluster;

  afterEach(async () => {
    if (this.ctx.currentTest?.state === 'failed') for (const n of c.nodes) console.error(`--- ${n.name}\n${c.logOf(n).slice(-3000)}`);
    await c.close();
  });
  after(cleanupTmpDirs);

  function expectInstalled(nodes: TestNode[]): void {
    for (const n of nodes) {
      const rec = c.frontend.inventory.requireNode(n.name);
      expect(rec.install?.state, `${n.name}: ${rec.install?.reason}`).to.equal('done');
      expect(rec.bootAction, n.name).to.equal('os');
      expect(sha256Prefix(n.target, c.imageRawSize), n.name).to.equal(c.imageSha);
      const kinds = c.frontend.inventory.events(n.name, 200).map((e) => e.kind);
      expect(kinds, n.name).to.include.members(['kickstart', 'install', 'boot']);
    }
  }

  for (const method of ['torrent', 'http', 'multicast'] as const) {
    it(`installs 4 nodes at once over ${method}, each verified and flipped to os`, async () => {
      c = new TestCluster();
      await c.startFrontend();
      await c.addImage('e2e', 24);
      c.writeProfile('plain', PLAIN);
      await c.frontend.reloadProfiles();
      const nodes = c.addNodes(4, 'plain', { 'image.name': 'e2e', 'image.method': method });
      const runs = await Promise.all(nodes.map((n) => c.install(n)));
      const codes = await Promise.all(runs.map((r) => r.exited));
      expect(codes).to.deep.equal([0, 0, 0, 0]);
      expectInstalled(nodes);
      if (method === 'torrent') {
        const fromPeers = nodes.reduce((a, n) => a + (c.frontend.inventory.requireNode(n.name).install?.bytesFromPeers ?? 0), 0);
        expect(fromPeers, 'bytes came through the swarm').to.be.greaterThan(0);
      }
    });
  }

  it('falls back from multicast to the swarm when no multicast data arrives, and says so', async () => {
    c = new TestCluster();
    await c.startFrontend();
    await c.addImage('e2e', 16);
    c.writeProfile('plain', PLAIN);
    await c.frontend.reloadProfiles();
    const [n] = c.addNodes(1, 'plain', { 'image.name': 'e2e', 'image.method': 'multicast' });
    expect(await (await c.install(n!, ['--multicast-loss', '0.99999', '--multicast-timeout', '1'])).exited).to.equal(0);
    expectInstalled([n!]);
    expect(c.logOf(n!)).to.match(/multicast unusable; falling back to torrent/);
    const notes = c.frontend.inventory
      .events(n!.name, 200)
      .map((e) => e.message)
      .join('\n');
    expect(notes).to.match(/falling back to torrent/);
  });

  it('a node whose %post fails ends failed, keeps boot action install, exits non-zero', async () => {
    c = new TestCluster();
    await c.startFrontend();
    await c.addImage('e2e', 16);
    fs.writeFileSync(`${c.frontend.dirs.templates}/snippets/fail-post.hbs`, 'echo "post going wrong"\nexit 3\n');
    c.writeProfile('failing', PLAIN.replace('  - log-install --nochroot', '  - fail-post --nochroot --erroronfail'));
    await c.frontend.reloadProfiles();
    const [n] = c.addNodes(1, 'failing', { 'image.name': 'e2e', 'image.method': 'http' });
    expect(await (await c.install(n!)).exited).to.not.equal(0);
    const rec = c.frontend.inventory.requireNode(n!.name);
    expect(rec.install?.state).to.equal('failed');
    expect(rec.install?.reason).to.match(/%post .*exit code 3/);
    expect(rec.bootAction).to.equal('install');
  });

  it('survives a frontend restart in the middle of the download', async () => {
    c = new TestCluster();
    const port = await freePort();
    await c.startFrontend({ httpPort: port, swarm: { uploadLimitBytes: 2_000_000 } });
    await c.addImage('e2e', 48);
    c.writeProfile('plain', PLAIN);
    await c.frontend.reloadProfiles();
    const [n] = c.addNodes(1, 'plain', { 'image.name': 'e2e', 'image.method': 'torrent' });
    const run = await c.install(n!);
    await until('the download to start', () => (c.frontend.inventory.requireNode(n!.name).install?.bytesDone ?? 0) > 0, 30_000);
    const logged = c.logOf(n!).length;
    await c.frontend.close();
    // Down until the installer has noticed: a warning or error logged since the close.
    await until('the installer to notice the frontend is gone', () => /"level":(40|50)/.test(c.logOf(n!).slice(logged)), 30_000);
    await c.startFrontend({ httpPort: port });
    expect(await run.exited).to.equal(0);
    expectInstalled([n!]);
  });

  it('keeps serving when an installer is killed mid-download: that node shows stalled, the others finish', async () => {
    c = new TestCluster();
    await c.startFrontend({ swarm: { uploadLimitBytes: 3_000_000 } });
    await c.addImage('e2e', 40);
    c.writeProfile('plain', PLAIN);
    await c.frontend.reloadProfiles();
    const nodes = c.addNodes(3, 'plain', { 'image.name': 'e2e', 'image.method': 'torrent' });
    const runs = await Promise.all(nodes.map((n) => c.install(n)));
    await until('node 0 to be downloading', () => (c.frontend.inventory.requireNode(nodes[0]!.name).install?.bytesDone ?? 0) > 0, 30_000);
    runs[0]!.child.kill('SIGKILL');
    expect(await Promise.all(runs.slice(1).map((r) => r.exited))).to.deep.equal([0, 0]);
    expectInstalled(nodes.slice(1));
    const killed = c.frontend.inventory.requireNode(nodes[0]!.name);
    const later = new Date(Date.parse(killed.install!.updatedAt) + 5000);
    expect(nodeStatus(killed, undefined, later, 2).state).to.equal('stalled');
    expect(killed.bootAction).to.equal('install');
  });
});
