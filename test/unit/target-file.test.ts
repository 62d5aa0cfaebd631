import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DIRECT_BLOCK, alignedBuffer, isAligned, openTarget } from '../../protocol/target-file.js';
import { directSupported } from '../helpers/direct-io.js';
import { skipBecause } from '../helpers/skip.js';

describe('install target: writes around the page cache', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-target-'));
    file = path.join(dir, 'disk');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('gives page-aligned buffers that direct writes take as they are', () => {
    const b = alignedBuffer(3 * DIRECT_BLOCK + 5)!;
    expect(b.length).to.equal(3 * DIRECT_BLOCK + 5);
    expect(b.every((x) => x === 0)).to.equal(true);
    expect(isAligned(b)).to.equal(true);
    expect(isAligned(b.subarray(DIRECT_BLOCK))).to.equal(true);
    expect(isAligned(b.subarray(1))).to.equal(false);
    expect(isAligned(Buffer.alloc(DIRECT_BLOCK))).to.equal(false);
    expect(isAligned(Buffer.from(b))).to.equal(false);
  });

  it('writes whole blocks directly and the partial blocks at either end through the page cache', async function () {
    // Direct I/O needs a file system that takes it; where every test must run, a missing one fails.
    if (!directSupported(dir)) skipBecause(this, `${os.tmpdir()} takes no O_DIRECT opens (tmpfs before Linux 6.6)`);
    const t = await openTarget(file, 4 << 20);
    try {
      expect(t.directIo).to.equal(true);
      const chunk = crypto.randomBytes(1 << 20);
      await t.write(chunk, 1 << 20);
      expect(t.stats).to.deep.include({ directBytes: 1 << 20, bufferedBytes: 0 });
      // 1000 + 10000: a 3096-byte head, one whole block, a 2808-byte tail.
      const odd = crypto.randomBytes(10000);
      await t.write(odd, 1000);
      expect(t.stats).to.deep.include({ directBytes: (1 << 20) + DIRECT_BLOCK, bufferedBytes: 3096 + 2808 });
      const small = crypto.randomBytes(100);
      await t.write(small, 3 << 20);
      expect(t.stats.bufferedBytes).to.equal(3096 + 2808 + 100);
      const aligned = alignedBuffer(2 * DIRECT_BLOCK)!;
      crypto.randomFillSync(aligned);
      await t.write(aligned, 2 << 20);
      await t.sync();
      const disk = fs.readFileSync(file);
      expect(disk.length).to.equal(4 << 20);
      expect(disk.subarray(1 << 20, 2 << 20).equals(chunk)).to.equal(true);
      expect(disk.subarray(1000, 11000).equals(odd)).to.equal(true);
      expect(disk.subarray(0, 1000).every((x) => x === 0)).to.equal(true);
      expect(disk.subarray(3 << 20, (3 << 20) + 100).equals(small)).to.equal(true);
      expect(disk.subarray(2 << 20, (2 << 20) + 2 * DIRECT_BLOCK).equals(aligned)).to.equal(true);
      expect(t.stats.directOff).to.equal(undefined);
    } finally {
      await t.close();
      await t.close();
    }
  });

  it('writes zeros over old bytes', async function () {
    // Direct I/O needs a file system that takes it; where every test must run, a missing one fails.
    if (!directSupported(dir)) skipBecause(this, `${os.tmpdir()} takes no O_DIRECT opens (tmpfs before Linux 6.6)`);
    const old = crypto.randomBytes(3 << 20);
    fs.writeFileSync(file, old);
    const t = await openTarget(file, 3 << 20);
    try {
      await t.writeZeros(100, (3 << 20) - 200);
      await t.sync();
    } finally {
      await t.close();
    }
    const disk = fs.readFileSync(file);
    expect(disk.subarray(0, 100).equals(old.subarray(0, 100))).to.equal(true);
    expect(disk.subarray(100, (3 << 20) - 100).every((x) => x === 0)).to.equal(true);
    expect(disk.subarray((3 << 20) - 100).equals(old.subarray((3 << 20) - 100))).to.equal(true);
    expect(t.stats).to.deep.include({ directBytes: (3 << 20) - 2 * DIRECT_BLOCK, bufferedBytes: 2 * (DIRECT_BLOCK - 100) });
  });

  it('writes distinct concurrent chunks exactly', async function () {
    // Direct I/O needs a file system that takes it; where every test must run, a missing one fails.
    if (!directSupported(dir)) skipBecause(this, `${os.tmpdir()} takes no O_DIRECT opens (tmpfs before Linux 6.6)`);
    const t = await openTarget(file, 8 << 20);
    const parts = Array.from({ length: 8 }, () => crypto.randomBytes(1 << 20));
    try {
      await Promise.all(parts.map((p, i) => t.write(p, i << 20)));
      await t.sync();
    } finally {
      await t.close();
    }
    expect(fs.readFileSync(file).equals(Buffer.concat(parts))).to.equal(true);
    expect(t.stats.directBytes).to.equal(8 << 20);
  });

  it('goes through the page cache when told to, and after the kernel refuses a direct write', async function () {
    const off = await openTarget(file, 1 << 20, { direct: false });
    try {
      expect(off.directIo).to.equal(false);
      expect(off.stats.directOff).to.match(/caller/);
      await off.write(crypto.randomBytes(1 << 20), 0);
      expect(off.stats).to.deep.include({ directBytes: 0, bufferedBytes: 1 << 20 });
    } finally {
      await off.close();
    }
    const t = await openTarget(file, 1 << 20);
    const data = crypto.randomBytes(1 << 20);
    try {
      if (!t.directIo) skipBecause(this, `${os.tmpdir()} takes no O_DIRECT opens (tmpfs before Linux 6.6)`);
      // A device that refuses the write (larger blocks, a file system without direct I/O).
      const refuse = Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
      const inner = t as unknown as { direct: { write: () => Promise<never>; close: () => Promise<void> } };
      inner.direct.write = () => Promise.reject(refuse);
      await t.write(data, 0);
      expect(t.directIo).to.equal(false);
      expect(t.stats.directOff).to.match(/refused a direct write/);
      expect(t.stats).to.deep.include({ directBytes: 0, bufferedBytes: 1 << 20 });
      await t.sync();
    } finally {
      await t.close();
    }
    expect(fs.readFileSync(file).equals(data)).to.equal(true);
  });
});
