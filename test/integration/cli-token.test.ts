import { expect } from 'chai';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('kickswarm token', function () {
  this.timeout(120_000);
  after(cleanupTmpDirs);

  it('creates a viewer token shown once, lists it without the token, revokes it; a bad role is exit 2', () => {
    const dir = tmpDir();
    const c = kickswarm(dir, ['token', 'create', '--role', 'viewer', '--json']);
    expect(c.code, c.stderr).to.equal(0);
    const made = JSON.parse(c.stdout) as { id: string; role: string; token: string };
    expect(made.role).to.equal('viewer');
    expect(made.token).to.match(/^[A-Za-z0-9_-]{32}$/);
    const l = kickswarm(dir, ['token', 'list', '--json']);
    expect(JSON.parse(l.stdout)).to.deep.equal({ tokens: [{ id: made.id, role: 'viewer', createdAt: (JSON.parse(l.stdout) as { tokens: { createdAt: string }[] }).tokens[0]!.createdAt }] });
    expect(l.stdout).not.to.include(made.token);
    expect(kickswarm(dir, ['token', 'revoke', made.id]).stdout).to.include(`revoked token ${made.id}`);
    expect(JSON.parse(kickswarm(dir, ['token', 'list', '--json']).stdout)).to.deep.equal({ tokens: [] });
    const bad = kickswarm(dir, ['token', 'create', '--role', 'root']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/unknown role "root"/);
    expect(kickswarm(dir, ['token', 'revoke', 'nope']).code).to.equal(1);
  });
});
