/**
 * A swarm install moves the image once, whatever `--linger` says: with
 * `--linger 0` (a site whose nodes must not seed after they finish) and with
 * the default, a node receives at most 1.02x the image's stored size and the
 * frontend sends at most 1.1 copies.
 */
import { expect } from 'chai';
import { TestCluster, type TestNode } from '../helpers/cluster.js';
import { sha256Prefix } from '../helpers/hash.js';
import { cleanupTmpDirs } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

function metric(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

async function frontendSent(c: TestCluster): Promise<number> {
  const text = await (await fetch(`${c.frontend.url}/metrics`)).text();
  return metric(text, 'kickswarm_swarm_bytes_sent_total') + metric(text, 'kickswarm_image_http_bytes_sent_total');
}

describe('swarm install bytes do not depend on --linger', function () {
  this.timeout(900_000);
  let c: TestCluster;
  let storedSize = 0;

  before(async () => {
    c = new TestCluster();
    // /metrics is read without the admin token here.
    await c.startFrontend({ metrics: { public: true } });
    await c.addImage('big', 400);
    storedSize = c.frontend.images.get('big')!.storedSize;
    c.writeProfile('plain', 'template: kickstart.hbs\nattributes:\n  clearpart: --all --initlabel\n  bootloader: --location=mbr\npost:\n  - log-install --nochroot\n');
    await c.frontend.reloadProfiles();
  });

  after(async () => {
    await c.close();
    cleanupTmpDirs();
  });

  /** Installs `n` (linger flags `extra`), waits for its install to be done, stops it; the bytes it received and the frontend sent. */
  async function install(n: TestNode, extra: string[]): Promise<{ received: number; sent: number; code: number | null }> {
    const sent0 = await frontendSent(c);
    const { child, exited } = await c.install(n, extra, { linger: 'default', deadlineSeconds: 120 });
    await until(`${n.name} to finish`, () => c.frontend.inventory.requireNode(n.name).install?.state === 'done' || child.exitCode !== null, 600_000, 200);
    child.kill('SIGTERM');
    const code = await exited;
    const rec = c.frontend.inventory.requireNode(n.name).install!;
    expect(rec.state, c.logOf(n).slice(-2000)).to.equal('done');
    expect(sha256Prefix(n.target, c.imageRawSize), n.name).to.equal(c.imageSha);
    return { received: (rec.bytesFromPeers ?? 0) + (rec.bytesFromFrontend ?? 0), sent: (await frontendSent(c)) - sent0, code };
  }

  for (const [what, extra] of [
    ['--linger 0', ['--linger', '0']],
    ['the default linger', []],
  ] as const) {
    it(`${what}: the node receives the image once, the frontend sends one copy`, async () => {
      const [n] = c.addNodes(1, 'plain', { 'image.name': 'big', 'image.method': 'torrent' }, c.nodes.length);
      const r = await install(n!, [...extra]);
      expect(c.imageRawSize, 'a multi-hundred-MiB image').to.be.at.least(400 << 20);
      expect(r.received, 'bytes received').to.be.within(storedSize, storedSize * 1.02);
      expect(r.sent, 'bytes the frontend sent').to.be.within(storedSize * 0.98, storedSize * 1.1);
    });
  }
});
