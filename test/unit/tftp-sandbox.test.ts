import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { errorPacket, requestedName } from '../../server/tftp/guard.js';
import { checkRequestName, isInside, openInRoot, readSmallFileInRoot } from '../../server/sandbox.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('tftp sandbox', () => {
  after(cleanupTmpDirs);

  describe('checkRequestName', () => {
    for (const [name, rel] of [
      ['pxelinux.0', 'pxelinux.0'],
      ['/pxelinux.0', 'pxelinux.0'],
      ['pxelinux.cfg//default', 'pxelinux.cfg/default'],
      ['./kickswarm/vmlinuz', 'kickswarm/vmlinuz'],
      ['..foo', '..foo'],
    ] as const) {
      it(`accepts ${JSON.stringify(name)} as ${JSON.stringify(rel)}`, () => {
        expect(checkRequestName(name)).to.deep.equal({ ok: true, rel });
      });
    }
    for (const [name, why] of [
      ['../etc/passwd', '..'],
      ['pxelinux.cfg/../../x', '..'],
      ['a/..', '..'],
      ['//etc/passwd', 'absolute'],
      ['a\\..\\b', 'backslash'],
      ['a\0b', 'NUL'],
      ['a\nb', 'control'],
      ['', 'empty'],
      ['/', 'empty'],
      ['./.', 'empty'],
    ] as const) {
      it(`refuses ${JSON.stringify(name)} (${why})`, () => {
        const c = checkRequestName(name);
        expect(c.ok).to.equal(false);
        if (!c.ok) expect(c.reason).to.include(why);
      });
    }
  });

  it('isInside is strict: the root itself and its parent are not inside', () => {
    expect(isInside('/srv/tftp', '/srv/tftp/a')).to.equal(true);
    expect(isInside('/srv/tftp', '/srv/tftp/..a')).to.equal(true);
    expect(isInside('/srv/tftp', '/srv/tftp')).to.equal(false);
    expect(isInside('/srv/tftp', '/srv/tftpx/a')).to.equal(false);
    expect(isInside('/srv/tftp', '/srv')).to.equal(false);
  });

  describe('openInRoot', () => {
    let root: string;
    let outside: string;
    beforeEach(() => {
      const dir = tmpDir();
      root = fs.realpathSync(path.join(dir));
      outside = path.join(root, 'outside');
      root = path.join(root, 'tftpboot');
      fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
      fs.mkdirSync(outside);
      fs.writeFileSync(path.join(root, 'sub', 'file'), 'inside');
      fs.writeFileSync(path.join(outside, 'secret'), 'SECRET');
      fs.symlinkSync(path.join(outside, 'secret'), path.join(root, 'escape'));
      fs.symlinkSync(outside, path.join(root, 'escdir'));
      fs.symlinkSync('sub/file', path.join(root, 'alias'));
    });

    it('opens a regular file and a symlink that stays inside', async () => {
      for (const rel of ['sub/file', 'alias']) {
        const r = await openInRoot(root, rel);
        expect(r.ok, rel).to.equal(true);
        if (r.ok) {
          expect(r.size).to.equal(6);
          expect((await r.handle.readFile()).toString()).to.equal('inside');
          await r.handle.close();
        }
      }
    });

    it('refuses symlinks to a file or directory outside the root as access violations', async () => {
      for (const rel of ['escape', 'escdir/secret']) {
        expect(await openInRoot(root, rel), rel).to.deep.include({ ok: false, why: 'denied' });
      }
    });

    it('answers not found for missing names, directories and names through a file', async () => {
      for (const rel of ['nope', 'sub', 'sub/file/x']) {
        expect(await openInRoot(root, rel), rel).to.deep.include({ ok: false, why: 'not_found' });
      }
    });

    it('readSmallFileInRoot applies the same rules and a size cap', () => {
      expect(readSmallFileInRoot(root, 'sub/file')?.toString()).to.equal('inside');
      expect(readSmallFileInRoot(root, 'escape')).to.equal(undefined);
      expect(readSmallFileInRoot(root, '../outside/secret')).to.equal(undefined);
      expect(readSmallFileInRoot(root, 'sub')).to.equal(undefined);
      expect(readSmallFileInRoot(root, 'sub/file', 3)).to.equal(undefined);
    });
  });

  describe('packets', () => {
    it('builds an RFC 1350 ERROR packet', () => {
      expect(errorPacket(2, 'Access violation')).to.deep.equal(Buffer.from('\x00\x05\x00\x02Access violation\x00', 'latin1'));
    });

    it('reads the raw filename of a request, undefined without a NUL', () => {
      expect(requestedName(Buffer.from('\x00\x01a/../b\x00octet\x00', 'latin1'))).to.equal('a/../b');
      expect(requestedName(Buffer.from('\x00\x01abc', 'latin1'))).to.equal(undefined);
      expect(requestedName(Buffer.from([0, 1]))).to.equal(undefined);
    });
  });
});
