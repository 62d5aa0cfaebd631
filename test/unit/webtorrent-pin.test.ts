import { expect } from 'chai';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { readInto } from '../../protocol/webtorrent-private-receive.js';
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
      // The wire fields parseWires, the receive path and dropPeersWithBadHaves replace or read (bittorrent-protocol's Wire).
      const { default: Wire } = (await import('bittorrent-protocol' as string)) as { default: new () => Record<string, unknown> & { destroy(): void } };
      const w = new Wire();
      for (const m of ['_write', '_parser', '_onHave', '_onMessage', '_onMessageLength', '_onPiece', '_parse', 'request', '_onRequest', '_onCancel', 'piece'])
        expect(typeof w[m], m).to.equal('function');
      expect(w.requests, 'requests').to.deep.equal([]);
      // What boundUploads reads: the requests being answered and the bytes the wire holds to send.
      expect(w.peerRequests, 'peerRequests').to.deep.equal([]);
      expect((w._readableState as { buffered?: unknown } | undefined)?.buffered, '_readableState.buffered').to.equal(0);
      expect(w._buffer, '_buffer').to.deep.equal([]);
      // eslint-disable-next-line no-restricted-properties -- as above
      expect(w._bufferSize, '_bufferSize').to.equal(0);
      // eslint-disable-next-line no-restricted-properties -- as above
      expect(typeof w._parserSize, '_parserSize').to.equal('number');
      w.destroy();
      // The piece fields the receive path's flush reads and sets (torrent-piece's Piece), and its block length.
      const { default: Piece } = (await import('torrent-piece' as string)) as { default: (new (n: number) => Record<string, unknown> & { init(): boolean }) & { BLOCK_LENGTH: number } };
      expect(Piece.BLOCK_LENGTH, 'BLOCK_LENGTH').to.equal(16384);
      const piece = new Piece(40_000);
      piece.init();
      expect(piece, 'Piece fields').to.include({ length: 40_000, _flushed: false, _chunks: 3, _buffered: 0 });
      expect(piece._buffer, '_buffer').to.be.an('array');
      expect(piece._cancellations, '_cancellations').to.be.an('array');
      expect(piece.sources, 'sources').to.be.an('array');
      expect(typeof piece.flush, 'flush').to.equal('function');
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

  it("a socket of this Node.js has the members that make it read into a buffer of the receive path's own", async () => {
    const server = net.createServer((c) => c.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      await new Promise((r) => sock.once('connect', r));
      const own = Object.getOwnPropertySymbols(sock).map((x) => x.description);
      for (const name of ['kBuffer', 'kBufferCb', 'kBufferGen']) expect(own, name).to.include(name);
      expect(typeof (sock as unknown as { _handle: { useUserBuffer?: unknown } })._handle.useUserBuffer, 'useUserBuffer').to.equal('function');
      const got: number[] = [];
      expect(
        readInto(sock, (d) => got.push(d.length)),
        'readInto switches the socket',
      ).to.equal(true);
    } finally {
      sock.destroy();
      server.close();
    }
  });
});
