import { expect } from 'chai';
import { kickswarm } from '../helpers/cli.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

interface DemoJson {
  nodes: { name: string; state: string; seconds: number; sha256Match: boolean }[];
  makespanSeconds: number;
  imageBytes: number;
  frontendBytesSent: number;
  peerBytesSent: number;
  ok: boolean;
}

describe('kickswarm demo, as the README runs it', function () {
  this.timeout(180_000);
  after(cleanupTmpDirs);

  for (const [method, extra] of [
    ['torrent', []],
    ['http', []],
    ['multicast', ['--loss', '0.05']],
  ] as const) {
    it(`reinstalls 3 simulated nodes over ${method}${extra.length ? ` (${extra.join(' ')})` : ''} and prints the JSON summary`, () => {
      const r = kickswarm(tmpDir(), ['demo', '--nodes', '3', '--image-mb', '16', '--linger', '1', '--method', method, ...extra, '--json']);
      expect(r.code, r.stderr.slice(-2000)).to.equal(0);
      const s = JSON.parse(r.stdout) as DemoJson;
      expect(s.ok).to.equal(true);
      expect(s.nodes.map((n) => [n.state, n.sha256Match])).to.deep.equal([
        ['done', true],
        ['done', true],
        ['done', true],
      ]);
      expect(s.imageBytes).to.equal(16 * 1024 * 1024);
      expect(s.frontendBytesSent).to.be.greaterThan(0);
      expect(s.makespanSeconds).to.be.greaterThan(0);
    });
  }

  it('refuses options that do not fit, with exit 2', () => {
    expect(kickswarm(tmpDir(), ['demo', '--method', 'torrent', '--loss', '0.1']).code).to.equal(2);
    expect(kickswarm(tmpDir(), ['demo', '--nodes', '0']).code).to.equal(2);
    expect(kickswarm(tmpDir(), ['demo', '--method', 'ftp']).code).to.equal(2);
  });
});
