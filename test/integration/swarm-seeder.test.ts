import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { CorruptImageError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { SwarmProxy } from '../../node-installer/proxy/proxy.js';
import { silentLogger } from '../../server/log.js';
import { SwarmSeeder } from '../../server/swarm/seeder.js';
import { TestFrontend, fetchBytes, infoHashOf, makeImage, makeTorrent, rejection } from '../helpers/swarm.js';
import { sha256 } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';

const MB = 1024 * 1024;

describe('swarm: the frontend seeder', function () {
  this.timeout(20_000);
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('refuses images that do not match their torrent, and missing files', async () => {
    const img = await makeImage(dir, 'img', 300_000);
    const torrent = await makeTorrent(img.path, { announce: 'http://127.0.0.1:9/announce' });
    const seeder = new SwarmSeeder({ log: silentLogger(), verify: true });
    try {
      const seedFile = (file: string, t = torrent) => rejection(seeder.seed({ name: 'x', path: join(dir, file), torrent: t }));
      expect(await seedFile('missing')).to.be.instanceOf(NotFoundError);
      await writeFile(join(dir, 'short'), img.data.subarray(1));
      const short = await seedFile('short');
      expect(short).to.be.instanceOf(CorruptImageError);
      expect(short.message).to.match(/299999 bytes/);
      const flipped = Buffer.from(img.data);
      flipped[200_000] = flipped[200_000]! ^ 1;
      await writeFile(join(dir, 'flipped'), flipped);
      const bad = await seedFile('flipped');
      expect(bad).to.be.instanceOf(CorruptImageError);
      expect(bad.message).to.match(/piece hashes differ/);
      expect(await seedFile('img', Buffer.from('nonsense'))).to.be.instanceOf(InvalidInputError);
      const s = await seeder.seed({ name: 'x', path: img.path, torrent });
      expect(s).to.include({ name: 'x', infoHash: await infoHashOf(torrent), length: 300_000, uploaded: 0 });
      expect(seeder.stats()).to.have.length(1);
      await seeder.unseed('x');
      await seeder.unseed('x');
      expect(seeder.stats()).to.deep.equal([]);
    } finally {
      await seeder.close();
      await seeder.close();
    }
    expect((await rejection(seeder.seed({ name: 'x', path: img.path, torrent }))).message).to.match(/closed/);
  });

  it('seeds in place under any torrent name and honours the upload cap', async () => {
    const fe = await new TestFrontend().start();
    const proxy = new SwarmProxy({ frontend: fe.url, log: silentLogger(), stallTimeout: 60 });
    try {
      const img = await makeImage(dir, 'disk.raw', 2 * MB);
      const torrent = await makeTorrent(img.path, { announce: fe.announce, name: 'other-name.ksimg' });
      fe.seeder.setUploadLimit(1 * MB);
      await fe.publish('capped', img.path, torrent, await infoHashOf(torrent));
      const { url } = await proxy.start();
      const t0 = Date.now();
      const res = await fetchBytes(`${url}install/images/capped`);
      const took = Date.now() - t0;
      expect(sha256(res.body)).to.equal(img.sha256);
      expect(took).to.be.at.least(1200);
      const [s] = fe.seeder.stats();
      expect(s!.uploaded).to.be.at.least(2 * MB);
    } finally {
      await proxy.close();
      await fe.close();
    }
  });
});
