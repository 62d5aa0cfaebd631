/**
 * Stock clients against our server: tftp-hpa (plain RFC 1350) and atftp
 * (options). A missing client binary fails these tests; it does not skip them.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { BootPolicy } from '../../server/core/boot.js';
import { Inventory } from '../../server/inventory/store.js';
import { silentLogger } from '../../server/log.js';
import { PxeService } from '../../server/pxe/service.js';
import type { TftpServer } from '../../server/tftp/server.js';
import { atftpGet, startTftp, tftpHpaGet } from '../helpers/tftp.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { sha256 } from '../helpers/hash.js';
import { FakeRenderer } from '../helpers/renderer.js';

describe('tftp server with stock clients', function () {
  this.timeout(120_000);
  let dir: string;
  let root: string;
  let inv: Inventory;
  let server: TftpServer;
  let port: number;
  let kernelSha: string;
  const cfg = 'pxelinux.cfg/01-52-54-00-00-00-01';
  const expected = 'MODE install node compute-0-0\n';
  const out = (name: string) => path.join(dir, 'out', name);

  before(async () => {
    dir = tmpDir();
    root = path.join(dir, 'tftpboot');
    fs.mkdirSync(path.join(root, 'kickswarm'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'out'));
    const kernel = crypto.randomBytes(20 * 1024 * 1024);
    fs.writeFileSync(path.join(root, 'kickswarm', 'vmlinuz'), kernel);
    kernelSha = sha256(kernel);
    fs.writeFileSync(path.join(dir, 'secret'), 'SECRET-OUTSIDE');
    fs.symlinkSync(path.join(dir, 'secret'), path.join(root, 'escape'));
    inv = new Inventory(path.join(dir, 'inventory.sqlite'));
    inv.addNode({ name: parseNodeName('compute-0-0'), mac: parseMac('52:54:00:00:00:01'), ip: parseIpv4('10.18.1.2'), appliance: 'compute', bootAction: 'install' });
    const log = silentLogger();
    const pxe = new PxeService({ policy: new BootPolicy(inv, log), inventory: inv, renderer: new FakeRenderer(), tftpRoot: root, log });
    ({ server, port } = await startTftp(root, pxe));
  });
  after(async () => {
    await server.close();
    inv.close();
    cleanupTmpDirs();
  });

  describe('tftp-hpa', () => {
    it('fetches a generated pxelinux.cfg/01-<mac>', async () => {
      const r = await tftpHpaGet(port, cfg, out('hpa.cfg'));
      expect(r.stdout + r.stderr).to.equal('');
      expect(fs.readFileSync(out('hpa.cfg'), 'utf8')).to.equal(expected);
    });

    it('fetches a 20 MB kernel byte for byte', async () => {
      const r = await tftpHpaGet(port, 'kickswarm/vmlinuz', out('hpa.vmlinuz'));
      expect(r.stdout + r.stderr).to.equal('');
      expect(sha256(out('hpa.vmlinuz'))).to.equal(kernelSha);
    });

    it('gets File not found for an unknown MAC and Access violation for traversal and escapes', async () => {
      expect((await tftpHpaGet(port, 'pxelinux.cfg/01-52-54-00-00-00-99', out('hpa.none'))).stdout).to.match(/Error code 1: File not found/);
      for (const name of ['../secret', 'pxelinux.cfg/../../secret', 'escape']) {
        const r = await tftpHpaGet(port, name, out('hpa.bad'));
        expect(r.stdout, name).to.match(/Error code 2: Access violation/);
        expect(fs.readFileSync(out('hpa.bad'), 'utf8')).to.equal('');
      }
    });
  });

  describe('atftp', () => {
    it('fetches a generated pxelinux.cfg/01-<mac> without options', async () => {
      const r = await atftpGet(port, cfg, out('atftp.plain.cfg'), []);
      expect(r.code, r.stderr).to.equal(0);
      expect(fs.readFileSync(out('atftp.plain.cfg'), 'utf8')).to.equal(expected);
    });

    it('fetches a generated pxelinux.cfg/01-<mac> with tsize and blksize, and is told its size', async () => {
      const r = await atftpGet(port, cfg, out('atftp.cfg'), ['--trace', '--option', 'tsize 0', '--option', 'blksize 1468']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.include(`received OACK <tsize: ${expected.length}, blksize: 1468`);
      expect(fs.readFileSync(out('atftp.cfg'), 'utf8')).to.equal(expected);
    });

    it('fetches a 20 MB kernel byte for byte with blksize 1468 and windowsize 4', async () => {
      const r = await atftpGet(port, 'kickswarm/vmlinuz', out('atftp.vmlinuz'), ['--option', 'tsize 0', '--option', 'blksize 1468', '--option', 'windowsize 4']);
      expect(r.code, r.stderr).to.equal(0);
      expect(sha256(out('atftp.vmlinuz'))).to.equal(kernelSha);
    });

    it('is refused traversal and symlink escapes', async () => {
      for (const name of ['../secret', 'escape']) {
        const r = await atftpGet(port, name, out('atftp.bad'));
        expect(r.code, name).to.not.equal(0);
        expect(r.stderr, name).to.match(/Access violation/);
        expect(fs.readFileSync(out('atftp.bad'), 'utf8')).to.equal('');
      }
    });
  });
});
