/**
 * A node installs an image whose stored size is about 4x its memory, as in its
 * boot environment: the installer runs in a memory cgroup of its own (256 MiB)
 * with TMPDIR on a tmpfs, so every file it writes outside the target counts
 * against that limit. It must finish without the OOM killer, and keep serving
 * its pieces: a second node started after it is done completes, partly from it.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TestCluster, type TestNode } from '../helpers/cluster.js';
import { createMemoryCgroup, memoryCgroupUnavailable, type MemoryCgroup } from '../helpers/memcg.js';
import { skipBecause } from '../helpers/skip.js';
import { sha256Prefix } from '../helpers/hash.js';
import { cleanupTmpDirs } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const MiB = 1 << 20;
const LIMIT = 256 * MiB;
/** Anonymous memory the first node may use while it serves the late node (it used 230-250 MB when it queued every block asked for). */
const SERVING_LIMIT = 192 * MiB;
/** Raw image: incompressible except the last 64 MiB (zeros), so it stores as about 1 GiB. */
const RAW_MIB = 1088;

function writeRandomImage(file: string): void {
  const cipher = crypto.createCipheriv('aes-256-ctr', crypto.randomBytes(32), Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let i = 0; i < RAW_MIB - 64; i++) fs.writeSync(fd, cipher.update(zeros));
  } finally {
    fs.closeSync(fd);
  }
  fs.truncateSync(file, RAW_MIB * MiB);
}

function metric(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

describe('install in a boot environment: stored image 4x the memory limit', function () {
  this.timeout(1_500_000);
  let c: TestCluster | undefined;
  let cg: MemoryCgroup | undefined;
  let tmpfs: string | undefined;

  after(async () => {
    // The installers first (close() waits for them to exit): the cgroup can go only once it is empty.
    await c?.close();
    cg?.remove();
    if (tmpfs) execFileSync('umount', [tmpfs]);
    cleanupTmpDirs();
  });

  it('installs about 1 GiB stored within 256 MiB, then serves a late node', async function () {
    const why = memoryCgroupUnavailable();
    if (why) skipBecause(this, why);
    c = new TestCluster();
    // /metrics is read without the admin token here.
    await c.startFrontend({ metrics: { public: true } });
    const raw = path.join(c.dir, 'big.raw');
    writeRandomImage(raw);
    const meta = await c.frontend.images.add(raw, 'big');
    fs.rmSync(raw);
    expect(meta.storedSize, 'stored size').to.be.at.least(4 * LIMIT);
    c.writeProfile('plain', 'template: kickstart.hbs\nattributes:\n  clearpart: --all --initlabel\n  bootloader: --location=mbr\npost:\n  - log-install --nochroot\n');
    await c.frontend.reloadProfiles();
    const [first, late] = c.addNodes(2, 'plain', { 'image.name': 'big', 'image.method': 'torrent' });

    tmpfs = path.join(c.dir, 'tmpfs');
    fs.mkdirSync(tmpfs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2g', 'ksdp-memtest', tmpfs]);
    cg = createMemoryCgroup(`ksdp-memtest-${process.pid}`, LIMIT);
    const env = { ...process.env, TMPDIR: tmpfs };

    const a = await c.install(first!, [], { linger: 600, deadlineSeconds: 120, wrap: cg.wrap, env });
    const record = (n: TestNode) => c!.frontend.inventory.requireNode(n.name).install;
    await until('the first node to finish', () => record(first!)?.state === 'done' || a.child.exitCode !== null, 900_000, 200);
    expect(a.child.exitCode, `first node exited early (oom kills: ${cg.oomKills()}):\n${c.logOf(first!).slice(-2000)}`).to.equal(null);
    expect(cg.oomKills()).to.equal(0);
    expect(sha256Prefix(first!.target, meta.rawSize)).to.equal(meta.sha256);
    const got = (record(first!)?.bytesFromPeers ?? 0) + (record(first!)?.bytesFromFrontend ?? 0);
    expect(got, 'bytes the first node received').to.be.at.most(meta.storedSize * 1.02);
    const peak = cg.peakBytes();
    if (peak !== undefined) expect(peak).to.be.at.most(LIMIT);

    const before = await (await fetch(`${c.frontend.url}/metrics`)).text();
    // What the first node holds while it serves: a peer's requests must not make it queue their blocks.
    let serving = 0;
    const sample = setInterval(() => (serving = Math.max(serving, cg!.anonBytes())), 50);
    const b = await c.install(late!, [], { linger: 0, deadlineSeconds: 120 });
    const exited = await b.exited;
    clearInterval(sample);
    expect(exited, c.logOf(late!).slice(-2000)).to.equal(0);
    expect(serving, "the first node's memory while it served").to.be.below(SERVING_LIMIT);
    expect(sha256Prefix(late!.target, meta.rawSize)).to.equal(meta.sha256);
    expect(a.child.exitCode, 'the first node kept running while it served').to.equal(null);
    const after = await (await fetch(`${c.frontend.url}/metrics`)).text();
    const sent = ['kickswarm_swarm_bytes_sent_total', 'kickswarm_image_http_bytes_sent_total'].reduce((n, m) => n + metric(after, m) - metric(before, m), 0);
    const received = (record(late!)?.bytesFromPeers ?? 0) + (record(late!)?.bytesFromFrontend ?? 0);
    expect(received, 'the late node received the image once').to.be.within(meta.storedSize, meta.storedSize * 1.02);
    expect(received - sent, 'bytes the late node took from the first').to.be.greaterThan(meta.storedSize / 4);
    expect(cg.oomKills()).to.equal(0);
  });
});
