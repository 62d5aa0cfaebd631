import { expect } from 'chai';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { TCP_ONLY, WEBTORRENT_VERSION, WebTorrent, destroyClient, whenListening } from '../../protocol/webtorrent.js';
import { REPO } from '../helpers/cli.js';
import { makeImage, makeTorrent } from '../helpers/swarm.js';
import { tempDir } from '../helpers/tmp.js';

/** The package.json of `name` as resolved from `from` (a package folder). */
function packageJson(name: string, from: string): { version: string } {
  const require = createRequire(path.join(from, 'package.json'));
  let dir = path.dirname(require.resolve(name));
  while (!fs.existsSync(path.join(dir, 'package.json')) || JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== name) dir = path.dirname(dir);
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
}

describe('webtorrent adapter: the version it was written against', () => {
  it('package.json pins exactly that version, and it is the one installed', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.webtorrent, 'package.json pins webtorrent exactly').to.equal(WEBTORRENT_VERSION);
    expect(packageJson('webtorrent', REPO).version, 'installed webtorrent').to.equal(WEBTORRENT_VERSION);
  });

  it('a torrent of the installed webtorrent has every private method the adapter calls', async () => {
    const { dir, cleanup } = await tempDir();
    const client = await whenListening(new WebTorrent({ ...TCP_ONLY, torrentPort: 0 }));
    try {
      const img = await makeImage(dir, 'img', 100_000);
      const torrent = await makeTorrent(img.path, { announce: 'http://127.0.0.1:9/announce' });
      const t = client.add(torrent, { deselect: true }) as unknown as Record<string, unknown>;
      for (const m of ['_select', '_deselect', '_markVerified', '_checkDone', '_drain', '_update', '_updateWireWrapper']) expect(typeof t[m], m).to.equal('function');
      // eslint-disable-next-line no-restricted-properties -- this test pins the private names the adapter uses
      expect(t._peers, '_peers').to.be.instanceOf(Map);
      // The wire fields parseWires and dropPeersWithBadHaves replace or read (bittorrent-protocol's Wire).
      const { default: Wire } = (await import('bittorrent-protocol' as string)) as { default: new () => Record<string, unknown> & { destroy(): void } };
      const w = new Wire();
      for (const m of ['_write', '_parser', '_onHave', '_onMessage']) expect(typeof w[m], m).to.equal('function');
      expect(w._buffer, '_buffer').to.deep.equal([]);
      // eslint-disable-next-line no-restricted-properties -- as above
      expect(w._bufferSize, '_bufferSize').to.equal(0);
      // eslint-disable-next-line no-restricted-properties -- as above
      expect(typeof w._parserSize, '_parserSize').to.equal('number');
      w.destroy();
      // The peer method and client field directPipes replaces or reads.
      const { default: Peer } = (await import('webtorrent/lib/peer.js' as string)) as { default: { prototype: Record<string, unknown> } };
      // eslint-disable-next-line no-restricted-properties -- as above
      expect(typeof Peer.prototype.setThrottlePipes, 'setThrottlePipes').to.equal('function');
      // eslint-disable-next-line no-restricted-properties -- as above
      const groups = (client as unknown as { throttleGroups?: { down?: unknown; up?: unknown } }).throttleGroups;
      expect(groups?.down, 'throttleGroups.down').to.be.an('object');
      expect(groups?.up, 'throttleGroups.up').to.be.an('object');
    } finally {
      await destroyClient(client);
      await cleanup();
    }
  });
});
