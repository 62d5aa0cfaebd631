import { expect } from 'chai';
import { lowerBound, multicastDatagramShare, parseLoss, parseRate } from '../../bench/cluster/bound.js';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { childPids, cpuSeconds, readCpuSplit, withCpuAccounting } from '../../bench/cluster/procs.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

describe('bench:cluster arithmetic (no root needed)', () => {
  after(cleanupTmpDirs);

  it('reads tc rates in bits per second and refuses byte units', () => {
    expect(parseRate('50mbit')).to.equal(50e6);
    expect(parseRate('1gbit')).to.equal(1e9);
    expect(parseRate('800kbit')).to.equal(8e5);
    expect(() => parseRate('50mbps')).to.throw(/bit/);
    expect(() => parseRate('fast')).to.throw();
  });

  it('reads loss as a fraction or a percentage', () => {
    expect(parseLoss('1%')).to.equal(0.01);
    expect(parseLoss('0.05')).to.equal(0.05);
    expect(() => parseLoss('90%')).to.throw();
  });

  it('counts the frames of a multicast datagram, fragments included, in its share of the link', () => {
    // 1400-byte blocks: a 1440-byte datagram in one 1482-byte frame.
    expect(multicastDatagramShare(1400)).to.be.closeTo(1440 / 1482, 1e-12);
    // 8900-byte blocks on a 1500-byte MTU: 8948 bytes of IP payload in 7 fragments of IPv4 + Ethernet headers.
    expect(multicastDatagramShare(8900)).to.be.closeTo(8940 / (8948 + 7 * 34), 1e-12);
  });

  it('gives Kumar-Ross for the swarm, N*F/u for HTTP and F/u for multicast', () => {
    const F = 60 * 2 ** 20;
    const u = 50e6 / 8;
    const swarm = lowerBound({ method: 'torrent', nodes: 8, fileBytes: F, linkBytesPerSec: u });
    expect(swarm.seconds).to.be.closeTo(F / u, 1e-9);
    expect(swarm.limitedBy).to.equal('F/u_s');
    expect(lowerBound({ method: 'http', nodes: 8, fileBytes: F, linkBytesPerSec: u }).seconds).to.be.closeTo((8 * F) / u, 1e-9);
    expect(lowerBound({ method: 'multicast', nodes: 16, fileBytes: F, linkBytesPerSec: u }).seconds).to.be.closeTo(F / u, 1e-9);
  });

  it('counts the CPU seconds of a wrapped command, also when it was stopped by a signal', async () => {
    const dir = tmpDir('ksb-cpu-test-');
    const file = path.join(dir, 'cpu');
    const argv = withCpuAccounting([process.execPath, '-e', 'let x=0;while(process.cpuUsage().user<300000)for(let i=0;i<1e6;i++)x+=i'], file);
    execFileSync(argv[0]!, argv.slice(1));
    const spun = readCpuSplit(file)!;
    expect(spun.user + spun.system).to.be.within(0.2, 5);
    // A loop in JavaScript is user time; the kernel's part is the process's start and exit.
    expect(spun.user).to.be.above(spun.system);
    fs.rmSync(file);
    expect(readCpuSplit(file)).to.equal(null);

    // Reading /dev/zero is the kernel's work: system time.
    const reader = withCpuAccounting(
      [process.execPath, '-e', "const fs=require('fs');const b=Buffer.alloc(1<<20);const fd=fs.openSync('/dev/zero','r');while(process.cpuUsage().system<300000)fs.readSync(fd,b)"],
      file,
    );
    execFileSync(reader[0]!, reader.slice(1));
    const read = readCpuSplit(file)!;
    expect(read.system).to.be.within(0.2, 5);

    const spin = withCpuAccounting([process.execPath, '-e', 'for(;;){}'], file);
    const child = spawn(spin[0]!, spin.slice(1), { stdio: 'ignore' });
    // Let the spinner burn 0.3 CPU-s however busy the machine is.
    const inner = await until('the wrapped command to start', () => (childPids(child.pid!).length === 1 ? childPids(child.pid!) : undefined));
    await until('0.3 CPU-s of spinning', () => (cpuSeconds(inner[0]!) ?? 0) >= 0.3, 60_000);
    process.kill(inner[0]!, 'SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).to.equal(143);
    const killed = readCpuSplit(file)!;
    expect(killed.user + killed.system).to.be.within(0.2, 5);
  });
});
