import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { BootPolicy } from '../../server/core/boot.js';
import { Inventory } from '../../server/inventory/store.js';
import { silentLogger } from '../../server/log.js';
import { PxeService } from '../../server/pxe/service.js';
import { TftpServer } from '../../server/tftp/server.js';
import { RawPeer, npmGet, parseError, rrq, startTftp } from '../helpers/tftp.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { FakeRenderer } from '../helpers/renderer.js';

describe('tftp server (npm client, sandbox)', () => {
  let dir: string;
  let root: string;
  let inv: Inventory;
  let server: TftpServer;
  let port: number;
  let kernel: Buffer;

  before(async () => {
    dir = fs.realpathSync(tmpDir());
    root = path.join(dir, 'tftpboot');
    fs.mkdirSync(path.join(root, 'kickswarm'), { recursive: true });
    fs.mkdirSync(path.join(root, 'pxelinux.cfg'));
    fs.writeFileSync(path.join(root, 'pxelinux.0'), 'PXELINUX');
    fs.writeFileSync(path.join(root, 'empty'), '');
    kernel = crypto.randomBytes(3 * 1024 * 1024 + 17);
    fs.writeFileSync(path.join(root, 'kickswarm', 'vmlinuz'), kernel);
    fs.writeFileSync(path.join(dir, 'secret'), 'SECRET-OUTSIDE');
    fs.symlinkSync(path.join(dir, 'secret'), path.join(root, 'escape'));
    fs.symlinkSync(dir, path.join(root, 'escdir'));
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

  it('binds port 0 to a real port', () => {
    expect(port).to.be.a('number').greaterThan(0);
  });

  it('serves a generated pxelinux.cfg/01-<mac> and records it', async () => {
    expect((await npmGet(port, 'pxelinux.cfg/01-52-54-00-00-00-01')).toString()).to.equal('MODE install node compute-0-0\n');
    expect(inv.events(parseNodeName('compute-0-0')).map((e) => e.message)).to.include('served pxelinux.cfg/01-52-54-00-00-00-01 (install)');
  });

  it('serves the generated default and the hex-IP config', async () => {
    expect((await npmGet(port, 'pxelinux.cfg/default')).toString()).to.equal('MODE default node (none)\n');
    expect((await npmGet(port, 'pxelinux.cfg/0A120102')).toString()).to.equal('MODE install node compute-0-0\n');
  });

  it('answers File not found for an unknown MAC, a missing prefix and junk under pxelinux.cfg/', async () => {
    for (const name of ['pxelinux.cfg/01-52-54-00-00-00-99', 'pxelinux.cfg/0A12', 'pxelinux.cfg/foo', 'pxelinux.cfg/sub/default']) {
      const err = await npmGet(port, name).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message, name).to.match(/File not found/);
    }
  });

  it('serves static files, with or without one leading slash, byte for byte', async () => {
    expect((await npmGet(port, 'pxelinux.0')).toString()).to.equal('PXELINUX');
    const got = await npmGet(port, '/kickswarm/vmlinuz');
    expect(got.length).to.equal(kernel.length);
    expect(got.equals(kernel)).to.equal(true);
  });

  it('serves an empty file', async () => {
    expect((await npmGet(port, 'empty')).length).to.equal(0);
  });

  it('answers File not found for a missing file and for directories', async () => {
    for (const name of ['missing', 'kickswarm', 'pxelinux.cfg']) {
      const err = await npmGet(port, name).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message, name).to.match(/File not found/);
    }
  });

  describe('traversal attempts (raw requests, as sent)', () => {
    let peer: RawPeer;
    beforeEach(async () => {
      peer = await RawPeer.open();
    });
    afterEach(() => peer.close());

    const cases: [string, number][] = [
      ['../etc/passwd', 2],
      ['pxelinux.cfg/../../x', 2],
      ['pxelinux.cfg/../pxelinux.0', 2],
      ['kickswarm/../../secret', 2],
      ['//etc/passwd', 2],
      ['..\\secret', 2],
      ['escape', 2],
      ['escdir/secret', 2],
      ['/etc/passwd', 1],
      ['/../secret', 2],
    ];
    for (const [name, code] of cases) {
      it(`refuses ${JSON.stringify(name)} with TFTP error ${code} and sends no data`, async () => {
        await peer.send(rrq(name), port);
        const replies = await peer.waitFor(1);
        // No transfer is left that could still send data.
        await until('no transfer open', () => server.openTransfers() === 0);
        expect(peer.received.length).to.equal(1);
        expect(parseError(replies[0]!.msg)?.code).to.equal(code);
        expect(peer.received.some((r) => r.msg.includes('SECRET') || r.msg.includes('root:'))).to.equal(false);
      });
    }

    it('refuses write requests with Access violation and writes nothing', async () => {
      const wrq = rrq('uploaded');
      wrq[1] = 2;
      await peer.send(wrq, port);
      const [reply] = await peer.waitFor(1);
      expect(parseError(reply!.msg)).to.deep.equal({ code: 2, message: 'Access violation' });
      expect(fs.existsSync(path.join(root, 'uploaded'))).to.equal(false);
    });
  });

  it('start() twice gives the same port; close() is idempotent and stops answering', async () => {
    const s = new TftpServer({ host: '127.0.0.1', port: 0, root, generated: { dir: 'pxelinux.cfg', file: () => null }, log: silentLogger() });
    await s.close();
    const s2 = new TftpServer({ host: '127.0.0.1', port: 0, root, generated: { dir: 'pxelinux.cfg', file: () => Buffer.from('x') }, log: silentLogger() });
    const a = await s2.start();
    expect(await s2.start()).to.deep.equal(a);
    expect((await npmGet(a.port, 'pxelinux.cfg/default')).toString()).to.equal('x');
    await Promise.all([s2.close(), s2.close()]);
    await s2.close();
    const peer = await RawPeer.open();
    await peer.send(rrq('pxelinux.0'), a.port);
    expect(await peer.waitFor(1, 500)).to.have.length(0);
    peer.close();
  });

  it('fails to start with a clear error for a missing root, a busy port and a host name', async () => {
    const mk = (over: Partial<ConstructorParameters<typeof TftpServer>[0]>) =>
      new TftpServer({ host: '127.0.0.1', port: 0, root, generated: { dir: 'pxelinux.cfg', file: () => null }, log: silentLogger(), ...over });
    const errOf = (s: TftpServer) =>
      s.start().then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
    expect(await errOf(mk({ root: path.join(dir, 'nope') }))).to.include({ code: 'unavailable' });
    expect(await errOf(mk({ port }))).to.include({ code: 'unavailable' });
    expect(await errOf(mk({ host: 'example.org' }))).to.include({ code: 'invalid_input' });
  });
});
