import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { TestFrontend, infoHashOf, makeImage, makeTorrent } from '../helpers/swarm.js';
import { sha256 } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';

/** Runs aria2c; rejects (failing the test) when it is missing or exits non-zero. */
function aria2c(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('aria2c', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') reject(new Error('aria2c is not installed (Debian package aria2)'));
      else if (err) reject(new Error(`aria2c failed (${code ?? err.message}): ${stderr || stdout}`));
      else resolve(stdout);
    });
  });
}

describe('swarm: a stock BitTorrent client (aria2c)', function () {
  this.timeout(40_000);

  it('downloads an image from the tracker and the seeder alone (no web seed)', async () => {
    const { dir, cleanup } = await tempDir();
    const fe = await new TestFrontend().start();
    try {
      const img = await makeImage(dir, 'ubuntu', 5 * 1024 * 1024);
      const torrent = await makeTorrent(img.path, { announce: fe.announce });
      await fe.publish('ubuntu', img.path, torrent, await infoHashOf(torrent));
      const torrentFile = join(dir, 'ubuntu.torrent');
      await writeFile(torrentFile, torrent);
      const out = join(dir, 'out');
      await aria2c(
        [
          '--enable-dht=false',
          '--enable-dht6=false',
          '--bt-enable-lpd=false',
          '--enable-peer-exchange=false',
          '--seed-time=0',
          '--bt-stop-timeout=30',
          '--listen-port=46881-46999',
          '--allow-overwrite=true',
          '--auto-file-renaming=false',
          '--summary-interval=0',
          '--console-log-level=warn',
          `--dir=${out}`,
          torrentFile,
        ],
        35_000,
      );
      expect(sha256(await readFile(join(out, 'ubuntu')))).to.equal(img.sha256);
      expect(fe.webSeedBytes.get('ubuntu') ?? 0).to.equal(0);
      const [seed] = fe.seeder.stats();
      expect(seed!.uploaded).to.be.at.least(5 * 1024 * 1024);
    } finally {
      await fe.close();
      await cleanup();
    }
  });
});
