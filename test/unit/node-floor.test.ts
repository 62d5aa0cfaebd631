import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { measureFloor } from '../../bench/lib/node-floor.js';
import { CorruptImageError } from '../../protocol/errors.js';
import { writeImage } from '../../protocol/image-format.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const MiB = 1 << 20;

describe('bench:node-path --floor', () => {
  after(cleanupTmpDirs);

  it('times every step of an install for a real image and sums the counted ones', async () => {
    const dir = tmpDir();
    // 2 MiB random (stored as is), 2 MiB text (deflated), 1 MiB zeros (not stored).
    const raw = Buffer.concat([crypto.randomBytes(2 * MiB), Buffer.from('kickswarm floor '.repeat((2 * MiB) / 16)), Buffer.alloc(MiB)]);
    fs.writeFileSync(path.join(dir, 'disk.raw'), raw);
    const sum = await writeImage(path.join(dir, 'disk.raw'), path.join(dir, 'disk.ksimg'), { chunkSize: MiB });
    const work = tmpDir();
    const r = await measureFloor(path.join(dir, 'disk.ksimg'), work);
    expect(r.rawSize).to.equal(raw.length);
    expect(r.storedSize).to.equal(fs.statSync(path.join(dir, 'disk.ksimg')).size);
    expect(sum.rawSize).to.equal(raw.length);
    expect(r.steps.map((s) => s.step)).to.deep.equal([
      'receive (loopback TCP)',
      'receive into pieces',
      'receive (UDP)',
      'piece SHA-1',
      'piece writes',
      'inflate + chunk SHA-256',
      'chunk SHA-256 alone',
      'target writes',
    ]);
    for (const s of r.steps) expect(s.cpuSeconds, s.step).to.be.at.least(0);
    const counted = r.steps.filter((s) => !['chunk SHA-256 alone', 'receive (UDP)', 'receive (loopback TCP)'].includes(s.step)).reduce((a, s) => a + s.cpuSecondsPerGiBRaw, 0);
    expect(r.totalCpuSecondsPerGiBRaw).to.be.closeTo(counted, 0.011);
    const http = r.steps.filter((s) => ['receive (loopback TCP)', 'inflate + chunk SHA-256', 'target writes'].includes(s.step)).reduce((a, s) => a + s.cpuSecondsPerGiBRaw, 0);
    expect(r.httpCpuSecondsPerGiBRaw).to.be.closeTo(http, 0.011);
    const multicast = r.steps.filter((s) => ['receive (UDP)', 'inflate + chunk SHA-256', 'target writes'].includes(s.step)).reduce((a, s) => a + s.cpuSecondsPerGiBRaw, 0);
    expect(r.multicastCpuSecondsPerGiBRaw).to.be.closeTo(multicast, 0.011);
    expect(r.steps.find((s) => s.step === 'receive (UDP)')!.cpuSecondsPerGiBRaw, 'reading datagrams costs CPU').to.be.greaterThan(0);
    expect(fs.readdirSync(work)).to.deep.equal([]);
  });

  it('refuses a file that is not an image', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'junk.ksimg'), crypto.randomBytes(4096));
    let err: unknown;
    try {
      await measureFloor(path.join(dir, 'junk.ksimg'), dir);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(CorruptImageError);
  });
});
