import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { parseSecretsResponse } from '../../protocol/session.js';
import { writeSecrets } from '../../node-installer/install/secrets.js';
import { silentLogger } from '../../server/log.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('installer: profile secrets written into the installed root', () => {
  after(cleanupTmpDirs);

  it('writes each file with its mode, making folders, replacing what the image had', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc', 'shadow'), 'old\n');
    writeSecrets(
      root,
      [
        { path: '/etc/shadow', mode: '0600', content: 'root:$6$x:1:0:99999:7:::\n' },
        { path: '/root/.ssh/authorized_keys', mode: '0644', content: 'ssh-ed25519 AAAA admin\n' },
      ],
      silentLogger(),
    );
    expect(fs.readFileSync(path.join(root, 'etc/shadow'), 'utf8')).to.equal('root:$6$x:1:0:99999:7:::\n');
    expect(fs.statSync(path.join(root, 'etc/shadow')).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.join(root, 'root/.ssh/authorized_keys')).mode & 0o777).to.equal(0o644);
    expect(fs.readdirSync(path.join(root, 'etc'))).to.deep.equal(['shadow']);
  });

  it('refuses a path that leaves the root, directly or through a symlink in the image', () => {
    const root = tmpDir();
    const outside = tmpDir();
    fs.symlinkSync(outside, path.join(root, 'escape'));
    expect(() => writeSecrets(root, [{ path: '/escape/x', mode: '0600', content: 'x' }], silentLogger())).to.throw(/outside the installed root/);
    expect(() => writeSecrets(root, [{ path: '/../x', mode: '0600', content: 'x' }], silentLogger())).to.throw(/not an absolute path inside the root/);
    expect(fs.readdirSync(outside)).to.deep.equal([]);
  });

  it("parses the frontend's answer strictly", () => {
    expect(parseSecretsResponse({ node: 'n', files: [{ path: '/a', mode: '0600', content: 'x' }] }).files).to.have.length(1);
    expect(() => parseSecretsResponse({ node: 'n', files: [{ path: 'rel', mode: '0600', content: 'x' }] })).to.throw(/absolute path/);
    expect(() => parseSecretsResponse({ node: 'n', files: [{ path: '/a', mode: 'rwx', content: 'x' }] })).to.throw(/octal/);
    expect(() => parseSecretsResponse([])).to.throw(/JSON object/);
  });
});
