import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { TftpServer } from '../../server/tftp/server.js';
import { npmGet } from '../helpers/tftp.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { skipBecause } from '../helpers/skip.js';

const MiB = 1024 * 1024;

/** A kernel setting in bytes, or undefined when not on Linux. */
function sysctl(name: string): number | undefined {
  try {
    return Number(fs.readFileSync(`/proc/sys/net/core/${name}`, 'utf8'));
  } catch {
    return undefined;
  }
}

describe('tftp server: receive buffer of the listening socket', () => {
  let root: string;
  const rmemMax = sysctl('rmem_max');
  const rmemDefault = sysctl('rmem_default');

  before(function () {
    if (rmemMax === undefined || rmemDefault === undefined) skipBecause(this, 'needs Linux: net.core.rmem_max and rmem_default are read from /proc');
    root = tmpDir();
    fs.writeFileSync(path.join(root, 'pxelinux.0'), 'PXELINUX');
  });
  after(cleanupTmpDirs);

  /** Starts a server with `recvBufferBytes`, fetches a file through it, and returns its log. */
  async function run(recvBufferBytes: number | undefined): Promise<Record<string, unknown>[]> {
    const logs: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
    const server = new TftpServer({ host: '127.0.0.1', port: 0, root, generated: { dir: 'pxelinux.cfg', file: () => null }, log, recvBufferBytes });
    try {
      const { port } = await server.start();
      expect((await npmGet(port, 'pxelinux.0')).toString()).to.equal('PXELINUX');
    } finally {
      await server.close();
    }
    return logs;
  }
  const listening = (logs: Record<string, unknown>[]) => logs.find((l) => l.msg === 'tftp listening')!;
  const warnings = (logs: Record<string, unknown>[]) => logs.filter((l) => l.level === 40).map((l) => String(l.msg));

  it('gets the size asked for when net.core.rmem_max allows it, and logs what the kernel granted', async () => {
    const asked = Math.min(MiB, rmemMax!);
    const logs = await run(asked);
    expect(listening(logs).recvBufferBytes).to.equal(asked);
    expect(warnings(logs)).to.deep.equal([]);
  });

  it('keeps the system default (net.core.rmem_default) when no size is asked for', async () => {
    const logs = await run(undefined);
    expect(listening(logs).recvBufferBytes).to.equal(rmemDefault);
    expect(warnings(logs)).to.deep.equal([]);
  });

  it('starts with what the kernel grants beyond net.core.rmem_max, and warns how to raise it', async function () {
    const asked = rmemMax! + MiB;
    if (asked > 1024 * MiB) return skipBecause(this, 'net.core.rmem_max is raised beyond anything the config allows, so no size can be capped by it');
    const logs = await run(asked);
    expect(listening(logs).recvBufferBytes).to.equal(rmemMax);
    expect(warnings(logs)).to.have.length(1);
    expect(warnings(logs)[0]).to.contain(`granted a ${rmemMax}-byte receive buffer, not ${asked}`).and.contain(`sysctl -w net.core.rmem_max=${asked}`);
  });

  it('starts with the system default, and a warning, when the socket refuses the size', async () => {
    const logs = await run(2 ** 32);
    expect(listening(logs).recvBufferBytes).to.equal(rmemDefault);
    expect(warnings(logs)).to.deep.equal(['tftp: cannot set the receive buffer; keeping the system default']);
  });
});
