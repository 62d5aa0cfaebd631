import { expect } from 'chai';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { TftpServer } from '../../server/tftp/server.js';
import { lossyWindowGet, rawGet } from '../helpers/tftp-raw.js';
import { RawPeer, npmGet, parseError, rrq, startTftp } from '../helpers/tftp.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { skipBecause } from '../helpers/skip.js';
import { until } from '../helpers/until.js';
import { sha256 } from '../helpers/hash.js';

describe('tftp server under hostile input', () => {
  let root: string;
  let server: TftpServer;
  let port: number;
  let big: Buffer;
  let peer: RawPeer;
  const faults: unknown[] = [];
  const onFault = (e: unknown) => faults.push(e);
  const logs: { msg?: string }[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg?: string }) });

  before(async () => {
    process.on('unhandledRejection', onFault);
    process.on('uncaughtException', onFault);
    root = tmpDir();
    big = crypto.randomBytes(1024 * 1024 + 100);
    fs.writeFileSync(path.join(root, 'big.bin'), big);
    fs.writeFileSync(path.join(root, 'pxelinux.0'), 'PXELINUX');
    fs.writeFileSync(path.join(root, 'k100.bin'), crypto.randomBytes(100 * 1024));
    ({ server, port } = await startTftp(root, (name) => (name === 'default' ? Buffer.from('DEFAULT local\n') : null), log));
  });
  beforeEach(async () => {
    peer = await RawPeer.open();
  });
  afterEach(async () => {
    peer.close();
    // A full exchange after everything the test sent: a fault from any of it has been raised by now.
    await stillServes();
    expect(faults.splice(0), 'uncaught exceptions or unhandled rejections').to.deep.equal([]);
  });
  after(async () => {
    process.off('unhandledRejection', onFault);
    process.off('uncaughtException', onFault);
    await server.close();
    cleanupTmpDirs();
  });

  async function stillServes(): Promise<void> {
    expect((await npmGet(port, 'pxelinux.cfg/default')).toString()).to.equal('DEFAULT local\n');
    expect((await npmGet(port, 'pxelinux.0')).toString()).to.equal('PXELINUX');
  }

  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const datagrams: [string, Buffer][] = [
    ['an empty datagram', Buffer.alloc(0)],
    ['one byte', Buffer.from([0])],
    ['a truncated RRQ', Buffer.from('\x00\x01a', 'latin1')],
    ['an RRQ with no NUL', Buffer.concat([u16(1), Buffer.from('pxelinux.0octet')])],
    ['an RRQ with no mode', Buffer.concat([u16(1), Buffer.from('pxelinux.0\0')])],
    ['an RRQ with a bad mode', rrq('pxelinux.0', 'bogus')],
    ['an RRQ with a bad blksize', rrq('pxelinux.0', 'octet', { blksize: 'abc' })],
    ['an RRQ with an odd option list', Buffer.concat([rrq('pxelinux.0'), Buffer.from('blksize\0')])],
    ['an RRQ with a multibyte name', rrq(Buffer.from('pxé.0', 'utf8'))],
    ['an RRQ with a 600-byte name', rrq('a'.repeat(600))],
    ['a 9000-byte RRQ', rrq('b'.repeat(9000))],
    ['an RRQ for __proto__', rrq('__proto__')],
    ['garbage', crypto.randomBytes(200).fill(0xee, 0, 2)],
    ['an ERROR packet', Buffer.concat([u16(5), u16(0), Buffer.from('boom\0')])],
    ['a DATA packet', Buffer.concat([u16(3), u16(1), Buffer.alloc(512, 1)])],
    ['an ACK packet', Buffer.concat([u16(4), u16(7)])],
    ['an OACK packet', Buffer.concat([u16(6), Buffer.from('blksize\x001024\0')])],
    ['an unknown opcode', Buffer.concat([u16(99), Buffer.from('whatever\0octet\0')])],
  ];
  for (const [what, buf] of datagrams) {
    it(`survives ${what} and keeps serving`, async () => {
      await peer.send(buf, port);
      const replies = await peer.waitFor(1, 300);
      expect(
        replies.every((r) => r.msg.readUInt16BE(0) === 5),
        'only ERROR replies',
      ).to.equal(true);
      await stillServes();
    });
  }

  it('drops a request from source port 0 (the library would throw answering it)', async function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'sending from source port 0 needs a raw socket, so root');
    const script = [
      'import socket, struct, sys',
      'port = int(sys.argv[1]); payload = bytes.fromhex(sys.argv[2])',
      's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)',
      "s.sendto(struct.pack('!HHHH', 0, port, 8 + len(payload), 0) + payload, ('127.0.0.1', 0))",
    ].join('\n');
    await new Promise<void>((resolve, reject) => execFile('python3', ['-c', script, String(port), rrq('pxelinux.0').toString('hex')], (e) => (e ? reject(e) : resolve())));
    await until('the server to drop it', () => logs.some((l) => l.msg === 'dropped datagram from source port 0'));
    await stillServes();
  });

  it('never answers an ERROR packet', async () => {
    await peer.send(Buffer.concat([u16(5), u16(4), Buffer.from('loop?\0')]), port);
    expect(await peer.waitFor(1, 300)).to.have.length(0);
  });

  it('survives all of them at once, then serves a normal GET', async () => {
    for (let round = 0; round < 5; round++) for (const [, buf] of datagrams) await peer.send(buf, port);
    await stillServes();
  });

  describe('inside a transfer', () => {
    it('completes a transfer whose client re-sends ACKs (no Sorcerer’s Apprentice stall)', async () => {
      const r = await rawGet(port, 'big.bin', { dupAckEvery: 1 });
      expect(sha256(r.data)).to.equal(sha256(big));
      expect(r.dataPackets).to.be.at.most(Math.ceil(big.length / 512) + 10);
    });

    it('completes a transfer with options whose client re-sends ACKs', async () => {
      const r = await rawGet(port, 'big.bin', { dupAckEvery: 3, options: { blksize: '1024', tsize: '0' } });
      expect(sha256(r.data)).to.equal(sha256(big));
    });

    describe('with windowsize (RFC 7440) over a lossy, duplicating path', () => {
      const cases = [
        { loss: 0, duplicateAcks: true, limit: 1.05 },
        { loss: 0.05, duplicateAcks: false, limit: 1.5 },
        { loss: 0.05, duplicateAcks: true, limit: 1.5 },
      ];
      for (const c of cases) {
        it(`sends a 100 kB file for about its size on the wire (loss ${c.loss}, duplicated ACKs ${c.duplicateAcks})`, async function () {
          this.timeout(120_000);
          const file = fs.readFileSync(path.join(root, 'k100.bin'));
          const wire: number[] = [];
          for (const seed of [1, 2, 3]) {
            const r = await lossyWindowGet(port, 'k100.bin', { windowSize: 4, seed, ...c });
            expect(r.windowSize).to.equal(4);
            expect(sha256(r.data)).to.equal(sha256(file));
            wire.push(r.wireBytes / file.length);
          }
          for (const ratio of wire) expect(ratio, `wire bytes / file size per run: ${wire.map((x) => x.toFixed(2)).join(', ')}`).to.be.at.most(c.limit);
        });
      }
    });

    it('answers a foreign transfer ID with error 5 and carries on', async () => {
      const stranger = await RawPeer.open();
      try {
        const r = await rawGet(port, 'big.bin', {
          onData: async (block, tid) => {
            if (block === 3) await stranger.send(Buffer.concat([u16(5), u16(0), Buffer.from('die\0')]), tid.port);
            if (block === 4) await stranger.send(Buffer.concat([u16(4), u16(200)]), tid.port);
          },
        });
        expect(sha256(r.data)).to.equal(sha256(big));
        const replies = await stranger.waitFor(2);
        expect(replies.map((x) => parseError(x.msg)?.code)).to.deep.equal([5, 5]);
      } finally {
        stranger.close();
      }
    });

    it('ignores runt datagrams from the client on the transfer port', async () => {
      const r = await rawGet(port, 'big.bin', {
        onData: async (block, tid, p) => {
          if (block % 100 === 0) for (const b of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 4, 0])]) await p.send(b, tid.port);
        },
      });
      expect(sha256(r.data)).to.equal(sha256(big));
    });

    it('survives a client that acknowledges blocks it never received, then sends requests on the transfer port', async () => {
      let last = 0;
      const err = await rawGet(port, 'big.bin', {
        timeoutMs: 3000,
        onData: async (block, tid, p) => {
          last = block;
          if (block === 2) for (let b = 2; b < 400; b++) await p.send(Buffer.concat([u16(4), u16(b)]), tid.port);
          if (block === 3) for (const op of [1, 2, 3, 6, 42]) await p.send(Buffer.concat([u16(op), u16(9), Buffer.from('x\0octet\0')]), tid.port);
        },
      }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(last, 'ACKs of blocks never sent are ignored: block 3 still came').to.be.at.least(3);
      expect(err?.message, 'a request on the transfer port ends the transfer with error 4').to.match(/TFTP error .*"code":4/);
      await stillServes();
    });

    it('survives a client that aborts a transfer with an ERROR packet', async () => {
      const err = await rawGet(port, 'big.bin', {
        timeoutMs: 1500,
        onData: async (block, tid, p) => {
          if (block === 5) await p.send(Buffer.concat([u16(5), u16(0), Buffer.from('user cancelled\0')]), tid.port);
        },
      }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).to.match(/timed out|TFTP error/);
      await stillServes();
    });

    it('survives clients that vanish mid-transfer', async () => {
      const peers = await Promise.all([1, 2, 3].map(() => RawPeer.open()));
      for (const p of peers) await p.send(rrq('big.bin'), port);
      await Promise.all(peers.map((p) => p.waitFor(1)));
      for (const p of peers) p.close();
      await stillServes();
    });
  });
});
