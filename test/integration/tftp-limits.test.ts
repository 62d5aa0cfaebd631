import { expect } from 'chai';
import { execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../server/log.js';
import { TftpServer } from '../../server/tftp/server.js';
import { kickswarmSpawn } from '../helpers/cli.js';
import { skipBecause } from '../helpers/skip.js';
import { rawGet } from '../helpers/tftp-raw.js';
import { RawPeer, parseError, rrq } from '../helpers/tftp.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { sha256 } from '../helpers/hash.js';

/** Sends one RRQ from each given loopback address and never answers; returns the sockets (close them). */
async function unansweredRrqs(port: number, host: string, addresses: string[], name = 'big.bin'): Promise<dgram.Socket[]> {
  const sockets: dgram.Socket[] = [];
  for (const a of addresses) {
    const s = dgram.createSocket('udp4');
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.bind(0, a, r));
    sockets.push(s);
    await new Promise<void>((r) => s.send(rrq(name), port, host, () => r()));
  }
  return sockets;
}

describe('tftp transfer limits', () => {
  let root: string;
  let big: Buffer;
  const faults: unknown[] = [];
  const onFault = (e: unknown) => faults.push(e);

  before(() => {
    process.on('uncaughtException', onFault);
    process.on('unhandledRejection', onFault);
    root = tmpDir();
    big = crypto.randomBytes(200 * 1024);
    fs.writeFileSync(path.join(root, 'big.bin'), big);
    fs.writeFileSync(path.join(root, 'pxelinux.0'), 'PXELINUX');
  });
  afterEach(() => expect(faults.splice(0), 'uncaught exceptions or unhandled rejections').to.deep.equal([]));
  after(() => {
    process.off('uncaughtException', onFault);
    process.off('unhandledRejection', onFault);
    cleanupTmpDirs();
  });

  describe('caps (in process)', () => {
    let server: TftpServer;
    let port: number;
    beforeEach(async () => {
      server = new TftpServer({ host: '127.0.0.3', port: 0, root, generated: { dir: 'pxelinux.cfg', file: () => null }, log: silentLogger(), maxTransfers: 12, maxTransfersPerClient: 4 });
      ({ port } = await server.start());
    });
    afterEach(() => server.close());

    it('binds transfer sockets to the listen address', async () => {
      const r = await rawGet(port, 'pxelinux.0', { localAddress: '127.0.0.1', host: '127.0.0.3' });
      expect(r.data.toString()).to.equal('PXELINUX');
      expect(r.tid.address).to.equal('127.0.0.3');
      expect(r.tid.port).to.not.equal(port);
    });

    it('refuses transfers beyond the per-client cap with error 0, and serves other addresses at once', async () => {
      const flood = await RawPeer.open('127.0.0.1');
      try {
        for (let i = 0; i < 60; i++) await flood.send(rrq('big.bin'), port, '127.0.0.3');
        await until('an answer to every request', () => flood.received.length >= 60, 20_000);
        const errors = flood.received.map((r) => parseError(r.msg)).filter((e) => e !== undefined);
        const transfers = new Set(flood.received.filter((r) => r.msg.readUInt16BE(0) === 3).map((r) => r.rinfo.port));
        expect(transfers.size).to.equal(4);
        expect(errors).to.have.length(56);
        for (const e of errors) expect(e).to.deep.equal({ code: 0, message: 'Too many transfers from this address' });
        expect(server.openTransfers('127.0.0.1')).to.equal(4);
        const r = await rawGet(port, 'big.bin', { localAddress: '127.0.0.2', host: '127.0.0.3' });
        expect(sha256(r.data)).to.equal(sha256(big));
      } finally {
        flood.close();
      }
    });

    it('leaves requests beyond the total cap unanswered, frees slots as transfers end, then serves again', async () => {
      const addrs = Array.from({ length: 20 }, (_, i) => `127.0.9.${i + 1}`);
      const sockets = await unansweredRrqs(port, '127.0.0.3', addrs);
      const firstReply = new Map<dgram.Socket, dgram.RemoteInfo>();
      for (const s of sockets) s.on('message', (_m, rinfo) => firstReply.has(s) || firstReply.set(s, rinfo));
      try {
        await until('12 transfers open', () => server.openTransfers() === 12, 20_000);
        await until('12 answered', () => firstReply.size === 12, 20_000);
        // The listening socket takes datagrams in order and drops a request beyond the cap at once:
        // once a later datagram is answered, every request before it has been dropped or admitted.
        const probe = await RawPeer.open('127.0.9.200');
        try {
          await probe.send(Buffer.from([0, 99, 0x78, 0]), port, '127.0.0.3');
          expect(
            (await probe.waitFor(1)).map((x) => parseError(x.msg)?.code),
            'a later datagram was answered',
          ).to.deep.equal([4]);
        } finally {
          probe.close();
        }
        expect(firstReply.size, 'requests beyond the cap are not answered').to.equal(12);
        // End every transfer the way a client gives up: an ERROR packet to its transfer port.
        for (const [s, tid] of firstReply) s.send(Buffer.from([0, 5, 0, 0, 0x78, 0]), tid.port, tid.address);
        await until('all transfers closed', () => server.openTransfers() === 0, 20_000);
        const r = await rawGet(port, 'big.bin', { localAddress: '127.0.9.99', host: '127.0.0.3' });
        expect(sha256(r.data)).to.equal(sha256(big));
      } finally {
        for (const s of sockets) s.close();
      }
    });
  });

  describe('out of file descriptors (kickswarm serve under a low RLIMIT_NOFILE)', () => {
    let child: ChildProcess | undefined;
    let dataDir: string;
    afterEach(async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await until('serve to exit', () => child!.exitCode !== null || child!.signalCode !== null, 15_000).catch(() => child!.kill('SIGKILL'));
      }
      child = undefined;
    });

    it('survives hundreds of unanswered requests it has no descriptors for, then serves again', async function () {
      this.timeout(120_000);
      try {
        execFileSync('prlimit', ['--version']);
      } catch {
        skipBecause(this, 'needs prlimit (util-linux)');
      }
      dataDir = tmpDir();
      fs.mkdirSync(path.join(dataDir, 'tftpboot'), { recursive: true });
      fs.writeFileSync(path.join(dataDir, 'tftpboot', 'big.bin'), big);
      fs.writeFileSync(path.join(dataDir, 'tftpboot', 'pxelinux.0'), 'PXELINUX');
      // Caps far above the descriptor limit, so only the bind-failure handling stands between the flood and a crash.
      fs.writeFileSync(path.join(dataDir, 'kickswarm.yaml'), 'tftpMaxTransfers: 60000\ntftpMaxTransfersPerClient: 60000\n');
      const proc = (child = kickswarmSpawn(dataDir, ['serve', '--listen', '127.0.0.1', '--http-port', '0', '--tftp-port', '0']));
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await until('serve to start', () => /TFTP (\d+)\)/.test(out), 60_000);
      const port = Number(/TFTP (\d+)\)/.exec(out)![1]);
      const fds = fs.readdirSync(`/proc/${proc.pid}/fd`).length;
      const limit = fds + 40;
      execFileSync('prlimit', ['--pid', String(proc.pid), `--nofile=${limit}:${limit}`]);

      const flood = await RawPeer.open('127.0.0.1');
      try {
        for (let i = 0; i < 400; i++) await flood.send(rrq('big.bin'), port);
        // Full table: either seen directly, or through the server saying it could not bind a socket for a request.
        let open = 0;
        await until(
          () => `the descriptor table to fill: ${open} of ${limit} descriptors open; serve said:\n${out.slice(-2000)}`,
          () => {
            expect(proc.exitCode, `serve exited:\n${out.slice(-2000)}`).to.equal(null);
            open = fs.readdirSync(`/proc/${proc.pid}/fd`).length;
            return open >= limit - 2 || /cannot bind a transfer socket/.test(out);
          },
          30_000,
        );
        // The transfers time out (about 12 s); then a well-behaved client is served again.
        let got: Buffer | undefined;
        await until(
          'a normal GET to succeed',
          async () => {
            expect(proc.exitCode, `serve exited:\n${out.slice(-2000)}`).to.equal(null);
            const r = await rawGet(port, 'big.bin', { localAddress: '127.0.0.2', timeoutMs: 2000 }).catch(() => undefined);
            got = r?.data;
            return got !== undefined;
          },
          60_000,
        );
        expect(sha256(got!)).to.equal(sha256(big));
        expect(proc.exitCode).to.equal(null);
        expect(out).to.match(/cannot bind a transfer socket/);
      } finally {
        flood.close();
      }
    });
  });
});
