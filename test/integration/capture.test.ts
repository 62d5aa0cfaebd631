import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { captureImage, type CaptureOptions, type CaptureProgress } from '../../node-installer/capture/capture.js';
import { SourceChangedError, openCaptureSource, probeSize, sysfsBlockSize } from '../../node-installer/capture/source.js';
import { captureTokenFrom, parseByteSize } from '../../node-installer/cli/capture.js';
import { frontendFrom } from '../../node-installer/cli/run.js';
import { KickswarmError } from '../../protocol/errors.js';
import { applyImage } from '../../protocol/image-format.js';
import { type BootAction, type NodeName, parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { Frontend } from '../../server/frontend.js';
import { kickswarmInstallAsync } from '../helpers/cli.js';
import { sha256 } from '../helpers/hash.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { skipBecause } from '../helpers/skip.js';
import { until } from '../helpers/until.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const silent = pino({ level: 'silent' });

/** Random data, long zero runs, compressible text: 1 097 785 bytes, 17 chunks of 64 KiB, the last one short. */
function writeDisk(file: string): Buffer {
  const text = Buffer.from('etc/passwd root:x:0:0:root:/root:/bin/bash\n'.repeat(8000)).subarray(0, 300 * KiB);
  const disk = Buffer.concat([crypto.randomBytes(150 * KiB), Buffer.alloc(400 * KiB), text, crypto.randomBytes(10 * KiB), Buffer.alloc(200 * KiB), crypto.randomBytes(12345)]);
  fs.writeFileSync(file, disk);
  return disk;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** A token of the right shape that no session has. */
const MADE_UP = 'Q'.repeat(43);

describe('kickswarm-install capture', () => {
  let fe: Frontend;
  let url: string;
  let dir: string;
  let nodes = 0;

  /** Registers a node at the next 127.0.1.x with `action`; returns its name, IP and token. */
  const addNode = (action: BootAction = 'capture') => {
    const k = ++nodes;
    const name = parseNodeName(`golden-0-${k}`);
    const ip = parseIpv4(`127.0.1.${k}`);
    fe.inventory.addNode({ name, mac: parseMac(`52:54:00:00:0c:${k.toString(16).padStart(2, '0')}`), ip, appliance: 'compute', bootAction: action });
    return { name, ip, token: fe.inventory.session(name)?.token ?? MADE_UP };
  };
  const node = (name: NodeName) => fe.inventory.requireNode(name);
  const storeFiles = () => fs.readdirSync(fe.images.dir).sort();
  const opts = (n: { ip: string; token: string }, source: string, image: string, extra: Partial<CaptureOptions> = {}): CaptureOptions => ({
    frontend: url,
    source,
    image,
    token: n.token,
    localAddress: n.ip,
    chunkSize: 64 * KiB,
    log: silent,
    ...extra,
  });

  before(async () => {
    dir = tmpDir();
    fe = new Frontend({ dataDir: path.join(dir, 'data'), overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0 }, log: silent });
    url = (await fe.start()).frontendUrl;
    fs.mkdirSync(fe.images.dir, { recursive: true });
  });
  after(async () => {
    await fe?.close();
    cleanupTmpDirs();
  });

  it('captures a file in process: zero chunks skipped, stored with the raw SHA-256, boot action os, deploys byte-identical', async () => {
    const n = addNode();
    const src = path.join(dir, 'disk-1.raw');
    const disk = writeDisk(src);
    const seen: CaptureProgress[] = [];
    const r = await captureImage(opts(n, src, 'golden', { concurrency: 3, onProgress: (p) => seen.push(p) }));

    expect(r).to.include({ node: n.name, rawSize: disk.length, sha256: sha256(disk), chunkCount: 17 });
    expect(r.storedChunks).to.equal(10); // chunks 3-7, 14 and 15 are all zero
    expect(r.uploadSize).to.be.below(disk.length - 500 * KiB);
    expect(r.image).to.include({ name: 'golden', rawSize: disk.length, sha256: sha256(disk), storedSize: r.uploadSize, uploadedBytes: r.uploadSize });
    const listed = fe.images.list().find((m) => m.name === 'golden');
    expect(listed).to.include({ sha256: sha256(disk), rawSize: disk.length, chunkSize: 64 * KiB });
    expect(storeFiles()).to.deep.equal(['golden.json', 'golden.ksimg', 'golden.torrent']);

    const nr = node(n.name);
    expect(nr.bootAction).to.equal('os');
    expect(nr.install).to.include({ state: 'done', bytesDone: 2 * disk.length, bytesTotal: 2 * disk.length });
    expect(nr.install!.reason).to.match(/^captured image golden: /);
    expect(fe.inventory.events(n.name, 50).map((e) => e.message)).to.include.members([`install start -> writing (capture of golden from ${src}: pass 1 of 2, reading)`]);

    const scans = seen.filter((p) => p.phase === 'scan');
    const uploads = seen.filter((p) => p.phase === 'upload');
    expect(scans.at(-1)).to.deep.equal({ phase: 'scan', done: disk.length, total: disk.length });
    expect(uploads[0]).to.deep.equal({ phase: 'upload', done: 0, total: r.uploadSize });
    expect(uploads.at(-1)).to.deep.equal({ phase: 'upload', done: r.uploadSize, total: r.uploadSize });
    expect(seen.indexOf(uploads[0]!)).to.equal(scans.length);

    const target = path.join(dir, 'deployed-1.raw');
    expect(await applyImage(fe.images.path('golden'), target)).to.equal(sha256(disk));
    expect(fs.readFileSync(target).equals(disk)).to.equal(true);
  });

  it('captures through the kickswarm-install CLI', async () => {
    const n = addNode();
    const src = path.join(dir, 'disk-2.raw');
    const disk = writeDisk(src);
    const r = await kickswarmInstallAsync([
      'capture',
      '--frontend',
      url,
      '--source',
      src,
      '--image',
      'cli-golden',
      '--session',
      n.token,
      '--local-address',
      n.ip,
      '--chunk-size',
      '64K',
      '--level',
      '1',
      '--json',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout) as { node: string; sha256: string; rawSize: number; image: { name: string } };
    expect(out).to.include({ node: n.name, sha256: sha256(disk), rawSize: disk.length });
    expect(fe.images.get('cli-golden')).to.include({ sha256: sha256(disk), rawSize: disk.length });
    expect(node(n.name).bootAction).to.equal('os');
    expect(r.stderr).to.contain('pass 1/2 reading').and.contain('pass 2/2 uploading: 100%');
  });

  it('the CLI-captured image deploys back byte-identical', async () => {
    const target = path.join(dir, 'deployed-2.raw');
    await applyImage(fe.images.path('cli-golden'), target);
    expect(fs.readFileSync(target).equals(fs.readFileSync(path.join(dir, 'disk-2.raw')))).to.equal(true);
  });

  it("another node's session token from this address: refused before reading, nothing stored, neither node changes", async () => {
    const n = addNode();
    const victim = addNode();
    const src = path.join(dir, 'disk-big.raw');
    fs.writeFileSync(src, crypto.randomBytes(24 * MiB));
    const before = storeFiles();
    const err = await rejection(captureImage(opts(n, src, 'stolen', { token: victim.token })));
    expect(err).to.be.instanceOf(KickswarmError).and.have.property('code', 'forbidden');
    expect(err.message).to.equal(`the frontend refused this node's session (403): report.cgi: this session token is not valid from IP ${n.ip}`);
    expect(storeFiles()).to.deep.equal(before);
    expect(fe.images.has('stolen')).to.equal(false);
    for (const x of [n, victim]) {
      expect(node(x.name).bootAction).to.equal('capture');
      expect(node(x.name).install).to.equal(null);
    }
  });

  it('CLI: a made-up token exits 1 with one line; a malformed one and bad flags exit 2', async function () {
    this.timeout(120_000); // nine CLI processes start at once
    const n = addNode();
    const src = path.join(dir, 'disk-1.raw');
    const [wrong, malformed] = await Promise.all([
      kickswarmInstallAsync(['capture', '--frontend', url, '--source', src, '--image', 'nope', '--session', MADE_UP, '--local-address', n.ip]),
      kickswarmInstallAsync(['capture', '--frontend', url, '--source', src, '--image', 'nope', '--session', 'not-the-token', '--local-address', n.ip]),
    ]);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr.trim().split('\n').at(-1)).to.equal(`kickswarm-install: the frontend refused this node's session (403): report.cgi: unknown or ended session token`);
    expect(malformed.code).to.equal(2);
    expect(malformed.stderr).to.match(/not 43 base64url characters/);
    const bad = [
      [['--chunk-size', '3000'], /chunk size 3000 must be a power of two/],
      [['--chunk-size', 'lots'], /--chunk-size must be a size/],
      [['--image', 'a/b'], /malformed image name/],
      [['--level', '11'], /compression level 11/],
      [['--source', path.join(dir, 'absent.raw')], /no such file or device/],
      [['--frontend', 'ftp://x'], /must be an http:\/\/ URL/],
    ] as [string[], RegExp][];
    const runs = bad.map(([flags]) => {
      const base: Record<string, string> = { '--frontend': url, '--source': src, '--image': 'nope', '--token': n.token, '--local-address': n.ip };
      for (let i = 0; i < flags.length; i += 2) base[flags[i]!] = flags[i + 1]!;
      return kickswarmInstallAsync(['capture', ...Object.entries(base).flat()]);
    });
    const results = await Promise.all([...runs, kickswarmInstallAsync(['capture', '--frontend', url, '--image', 'nope'])]);
    bad.forEach(([flags, want], i) => {
      expect(results[i]!.code, `${flags.join(' ')}: ${results[i]!.stderr}`).to.equal(2);
      expect(results[i]!.stderr).to.match(want);
    });
    expect(results.at(-1)!.code).to.equal(2);
    expect(results.at(-1)!.stderr).to.contain("required option '--source <dev-or-file>' not specified");
    expect(fe.images.has('nope')).to.equal(false);
  });

  for (const [what, at, chunk] of [
    ['a deflated chunk', 700 * KiB, 10],
    ['a chunk stored as is', 10 * KiB, 0],
  ] as [string, number, number][]) {
    it(`aborts when ${what} changes between the passes; the frontend keeps nothing`, async () => {
      const n = addNode();
      const src = path.join(dir, `disk-moving-${chunk}.raw`);
      writeDisk(src);
      const before = storeFiles();
      const onProgress = (p: CaptureProgress) => {
        if (p.phase === 'upload' && p.done === 0) {
          const fd = fs.openSync(src, 'r+');
          fs.writeSync(fd, Buffer.from([0xff, 0xee]), 0, 2, at);
          fs.closeSync(fd);
        }
      };
      const err = await rejection(captureImage(opts(n, src, `moving-${chunk}`, { onProgress })));
      expect(err).to.be.instanceOf(SourceChangedError);
      const start = chunk * 64 * KiB;
      expect(err.message).to.contain(`changed between the two capture passes (chunk ${chunk}, bytes ${start}..${start + 64 * KiB})`);
      const history = () => fe.inventory.events(n.name, 50).map((e) => e.message);
      await until('the failed capture in the history', () => history().some((m) => m.startsWith(`capture of image moving-${chunk} failed (400): upload broken off`)));
      expect(history()).to.include(`capture upload of image moving-${chunk} started`);
      expect(storeFiles()).to.deep.equal(before);
      expect(node(n.name).bootAction).to.equal('capture');
      expect(node(n.name).install).to.include({ state: 'failed' });
    });
  }

  it('aborts when the source grows between the passes', async () => {
    const n = addNode();
    const src = path.join(dir, 'disk-4.raw');
    const disk = writeDisk(src);
    const onProgress = (p: CaptureProgress) => {
      if (p.phase === 'upload' && p.done === 0) fs.appendFileSync(src, Buffer.from('more'));
    };
    const err = await rejection(captureImage(opts(n, src, 'growing', { onProgress })));
    expect(err).to.be.instanceOf(SourceChangedError);
    expect(err.message).to.equal(`${src} is now ${disk.length + 4} bytes, it had ${disk.length} when the capture began`);
    expect(fe.images.has('growing')).to.equal(false);
  });

  it('refuses before reading the source: unknown node, boot action not capture, name taken', async () => {
    const src = path.join(dir, 'disk-1.raw');
    let scanned = 0;
    const onProgress = () => scanned++;
    const unknown = await rejection(captureImage(opts({ ip: '127.0.1.250', token: MADE_UP }, src, 'x1', { onProgress })));
    expect(unknown).to.have.property('code', 'forbidden');
    expect(unknown.message).to.match(/^the frontend refused this node's session \(403\).*unknown or ended session token/);

    const inOs = addNode('install');
    const forbidden = await rejection(captureImage(opts(inOs, src, 'x2', { onProgress })));
    expect(forbidden).to.have.property('code', 'forbidden');
    expect(forbidden.message).to.equal(`node ${inOs.name} has boot action install, not capture (on the frontend: kickswarm boot set ${inOs.name} --action capture)`);
    expect(node(inOs.name).bootAction).to.equal('install');

    const n = addNode();
    const taken = await rejection(captureImage(opts(n, src, 'golden', { onProgress })));
    expect(taken).to.have.property('code', 'conflict');
    expect(taken.message).to.match(/^image golden already exists on the frontend/);
    expect(scanned).to.equal(0);
    expect(node(n.name).install).to.include({ state: 'failed' });
  });

  it('keeps trying a frontend that cannot be reached yet, then captures', async () => {
    const n = addNode();
    const src = path.join(dir, 'disk-5.raw');
    const disk = writeDisk(src);
    // Refuses the first two connections, then relays to the frontend from the node's own address.
    let refused = 0;
    const target = new URL(url);
    const relay = net.createServer((c) => {
      if (refused++ < 2) return c.destroy();
      const up = net.connect({ host: target.hostname, port: Number(target.port), localAddress: n.ip });
      c.pipe(up).pipe(c);
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as net.AddressInfo).port;
    try {
      const r = await captureImage(opts(n, src, 'after-retry', { frontend: `http://127.0.0.1:${port}`, localAddress: undefined, deadlineSeconds: 20 }));
      expect(refused).to.be.above(2);
      expect(r.sha256).to.equal(sha256(disk));
      expect(fe.images.get('after-retry').sha256).to.equal(sha256(disk));
    } finally {
      relay.close();
    }
    const gone = await rejection(captureImage(opts(n, src, 'never', { frontend: `http://127.0.0.1:${port}`, deadlineSeconds: 0 })));
    expect(gone).to.have.property('code', 'unavailable');
    expect(gone.message).to.match(new RegExp(`^cannot reach the frontend at http://127.0.0.1:${port}: ECONNREFUSED`));
  });

  it('takes the token and the frontend from the kernel command line', () => {
    const cmdline = path.join(dir, 'cmdline');
    const t = 'abc_-123'.padEnd(43, 'x');
    fs.writeFileSync(cmdline, `BOOT_IMAGE=vmlinuz kickswarm.action=capture kickswarm.frontend=http://10.1.1.1:8080/ kickswarm.session=${t} quiet\n`);
    expect(captureTokenFrom(undefined, cmdline)).to.equal(t);
    expect(captureTokenFrom(MADE_UP, cmdline)).to.equal(MADE_UP);
    expect(() => captureTokenFrom('flag', cmdline)).to.throw(/not 43 base64url characters/);
    expect(frontendFrom(undefined, cmdline)).to.equal('http://10.1.1.1:8080');
    expect(() => captureTokenFrom(undefined, path.join(dir, 'absent'))).to.throw(/no session token: give --session TOKEN/);
    expect(parseByteSize('--chunk-size', '4MiB')).to.equal(4 * MiB);
    expect(parseByteSize('--chunk-size', '64k')).to.equal(64 * KiB);
    expect(parseByteSize('--chunk-size', '65536')).to.equal(64 * KiB);
  });

  it('sizes a source by probing or from sysfs, and refuses what it cannot capture twice', async () => {
    const f = path.join(dir, 'odd.raw');
    fs.writeFileSync(f, crypto.randomBytes(123457));
    const fh = await fs.promises.open(f, 'r');
    expect(await probeSize(fh)).to.equal(123457);
    await fh.close();
    const sys = path.join(dir, 'sys');
    fs.mkdirSync(path.join(sys, 'sdz'), { recursive: true });
    fs.writeFileSync(path.join(sys, 'sdz', 'size'), '4194304\n');
    fs.writeFileSync(path.join(dir, 'sdz'), '');
    expect(sysfsBlockSize(path.join(dir, 'sdz'), sys)).to.equal(4194304 * 512);
    expect(sysfsBlockSize(path.join(dir, 'absent'), sys)).to.equal(undefined);
    const empty = path.join(dir, 'empty.raw');
    fs.writeFileSync(empty, '');
    const huge = path.join(dir, 'huge.raw');
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, 400 * 1024 * MiB); // sparse: 6.5 million chunks of 64 KiB, an index over 256 MiB
    const tooSmall = await rejection(captureImage(opts({ ip: '127.0.1.250', token: MADE_UP }, huge, 'huge')));
    expect(tooSmall).to.have.property('code', 'invalid_input');
    expect(tooSmall.message).to.equal('chunk size 65536 is too small for 429496729600 bytes (the image index could pass 268435456 bytes); use --chunk-size 128K or more');
    for (const [p, want] of [
      [empty, /is empty; nothing to capture/],
      [dir, /neither a disk \(block device\) nor a regular file/],
      [path.join(dir, 'absent'), /no such file or device/],
    ] as [string, RegExp][]) {
      const e = await rejection(openCaptureSource(p));
      expect(e).to.have.property('code', 'invalid_input');
      expect(e.message).to.match(want);
    }
  });

  it('captures a block device (a loop device; needs root)', async function () {
    if (process.getuid?.() !== 0) return skipBecause(this, 'loop devices need root');
    const backing = path.join(dir, 'loop-backing.raw');
    const disk = Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(2 * MiB), crypto.randomBytes(MiB)]);
    fs.writeFileSync(backing, disk);
    const attach = spawnSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' });
    if (attach.status !== 0) return skipBecause(this, `no free loop device (losetup: ${attach.stderr.trim()})`);
    const dev = attach.stdout.trim();
    try {
      const n = addNode();
      const r = await captureImage(opts(n, dev, 'from-loop'));
      expect(r).to.include({ rawSize: disk.length, sha256: sha256(disk), storedChunks: 32 });
      expect(fe.images.get('from-loop').sha256).to.equal(sha256(disk));
    } finally {
      spawnSync('losetup', ['--detach', dev]);
    }
  });
});
