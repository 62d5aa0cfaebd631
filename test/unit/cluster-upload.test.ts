import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'chai';
import { IMAGE_MAGIC } from '../../protocol/image-format.js';
import { UploadBrokenError, receiveToFile } from '../../server/cluster/capture-upload.js';
import { errorAnswer } from '../../server/http/errors.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { rejection } from '../helpers/rejection.js';

describe('cluster: receiving a capture upload', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  after(cleanupTmpDirs);

  const opts = { maxBytes: 1000, idleTimeoutMs: 5000 };

  it('writes the body, with the magic split over chunks, and returns its size', async () => {
    const file = path.join(dir, 'up');
    const body = [IMAGE_MAGIC.subarray(0, 3), Buffer.concat([IMAGE_MAGIC.subarray(3), Buffer.from('rest of image')])];
    expect(await receiveToFile(Readable.from(body), file, opts)).to.equal(IMAGE_MAGIC.length + 13);
    expect(fs.readFileSync(file).equals(Buffer.concat(body))).to.equal(true);
  });

  it('refuses a body over the limit while streaming (413), pausing rather than destroying the source', async () => {
    const file = path.join(dir, 'big');
    const src = new PassThrough();
    const p = receiveToFile(src, file, opts);
    src.write(IMAGE_MAGIC);
    src.write(Buffer.alloc(600));
    src.write(Buffer.alloc(600));
    const err = await rejection(p);
    expect(err.code).to.equal('too_large');
    expect(errorAnswer(err).status).to.equal(413);
    expect(fs.existsSync(file)).to.equal(false);
    expect(src.destroyed).to.equal(false);
  });

  it('refuses a body that does not start with the image magic, however it is cut', async () => {
    const file = path.join(dir, 'raw');
    const err = await rejection(receiveToFile(Readable.from([Buffer.from('KSW'), Buffer.from('XXXXXXXX')]), file, opts));
    expect(err.code).to.equal('corrupt_image');
    expect(fs.existsSync(file)).to.equal(false);
    expect((await rejection(receiveToFile(Readable.from([Buffer.from('KS')]), file, opts))).code).to.equal('corrupt_image');
  });

  it('breaks off an upload that stalls, destroying the source', async () => {
    const file = path.join(dir, 'slow');
    const src = new PassThrough();
    const p = receiveToFile(src, file, { maxBytes: 1000, idleTimeoutMs: 150 });
    src.write(IMAGE_MAGIC);
    const err = await rejection(p);
    expect(err).to.be.instanceOf(UploadBrokenError);
    expect(err.message).to.match(/sent nothing for/);
    expect(src.destroyed).to.equal(true);
    expect(fs.existsSync(file)).to.equal(false);
  });

  it('reports a source error as a broken upload and never overwrites an existing file', async () => {
    const file = path.join(dir, 'err');
    const src = new PassThrough();
    const p = receiveToFile(src, file, opts);
    src.write(IMAGE_MAGIC);
    await until('the receiver to take the first bytes', () => src.writableLength === 0 && src.readableLength === 0);
    src.destroy(new Error('aborted'));
    const err = await rejection(p);
    expect(err).to.be.instanceOf(UploadBrokenError);
    expect(err.message).to.match(/broken off after 8 bytes \(aborted\)/);
    expect(fs.existsSync(file)).to.equal(false);
    fs.writeFileSync(file, 'keep');
    expect((await rejection(receiveToFile(Readable.from([IMAGE_MAGIC]), file, opts))).code).to.equal('EEXIST');
    expect(fs.readFileSync(file, 'utf8')).to.equal('keep');
  });
});
