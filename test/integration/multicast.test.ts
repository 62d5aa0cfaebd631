import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import Koa from 'koa';
import { FallbackError } from '../../protocol/errors.js';
import { receiveMulticast, type MulticastStats, type ReceiveMulticastOptions } from '../../node-installer/fetch/multicast.js';
import { errorMiddleware } from '../../server/http/errors.js';
import { imageRoutes } from '../../server/http/routes/images.js';
import { ImageStore } from '../../server/images/store.js';
import { silentLogger } from '../../server/log.js';
import { frisbeeRoutes } from '../../server/multicast/routes.js';
import { MulticastSessions } from '../../server/multicast/sessions.js';
import { until } from '../helpers/until.js';
import { sha256 } from '../helpers/hash.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const log = silentLogger();

/** A port range unlikely to clash with another test run on this machine. */
function portPool(size: number): string {
  const base = 20_000 + Math.floor(Math.random() * 30_000);
  return `${base}-${base + size - 1}`;
}

function groupPool(): string {
  const b = 1 + Math.floor(Math.random() * 200);
  return `239.255.${b}.1-239.255.${b}.30`;
}

interface Target {
  buf: Buffer;
  writes: number;
}

describe('multicast: frisbee path on loopback', function () {
  this.timeout(30_000);
  let dir: string;
  let store: ImageStore;
  let sessions: MulticastSessions;
  let server: http.Server;
  let base: string;
  let raw: Buffer;
  let rawSha: string;

  before(async () => {
    dir = tmpDir('ksmcast-');
    store = new ImageStore(path.join(dir, 'images'));
    raw = Buffer.concat([crypto.randomBytes(3 * MiB), Buffer.alloc(MiB), Buffer.from('kickswarm '.repeat(100_000)), crypto.randomBytes(MiB + 77)]);
    rawSha = sha256(raw);
    fs.writeFileSync(path.join(dir, 'raw'), raw);
    await store.add(path.join(dir, 'raw'), 'centos7', { chunkSize: 256 * KiB });
    fs.writeFileSync(path.join(dir, 'raw2'), crypto.randomBytes(300 * KiB));
    await store.add(path.join(dir, 'raw2'), 'small', { chunkSize: 64 * KiB });
    sessions = new MulticastSessions({ store, log, groupPool: groupPool(), portPool: portPool(30), rateBytesPerSec: 40e6, idleTimeoutMs: 60_000 });
    await sessions.start();
    const app = new Koa();
    app.use(errorMiddleware(log));
    for (const r of [imageRoutes({ store, torrentFor: async () => Buffer.alloc(0), log }), frisbeeRoutes(sessions)]) {
      app.use(r.routes()).use(r.allowedMethods());
    }
    server = http.createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await sessions.close();
    await new Promise((r) => server.close(r));
    cleanupTmpDirs();
  });

  function receive(extra: Partial<ReceiveMulticastOptions> = {}, image = 'centos7'): { target: Target; done: Promise<MulticastStats> } {
    const target: Target = { buf: Buffer.alloc(raw.length), writes: 0 };
    const done = receiveMulticast({
      frontend: base,
      image,
      localAddress: '127.0.0.1',
      // The receiver's own default: a success-path test must not fall back because a busy machine paused the sender.
      noDataTimeoutMs: 15_000,
      log,
      writeChunk: async (_n, off, data) => {
        data.copy(target.buf, off);
        target.writes++;
      },
      ...extra,
    });
    return { target, done };
  }

  it('three receivers get byte-identical images whose SHA-256 is the source image, chunks sent about once', async () => {
    const rs = [2, 3, 4].map((k) => receive({ localAddress: `127.0.0.${k}` }));
    const stats = await Promise.all(rs.map((r) => r.done));
    for (const r of rs) expect(sha256(r.target.buf)).to.equal(rawSha);
    const meta = store.get('centos7');
    for (const s of stats) {
      expect(s.chunksWritten).to.equal(meta.storedChunks);
      expect(s.header.sha256).to.equal(rawSha);
      expect(s.requestsSent).to.be.greaterThan(0);
    }
    const status = () => sessions.status().find((x) => x.image === 'centos7');
    // Every receiver said LEAVE (the sender takes it in a moment after the receiver is done).
    const st = await until(
      () => `every receiver to leave: ${JSON.stringify(status())}`,
      () => {
        const x = status();
        return x && x.receivers >= 3 && x.activeReceivers === 0 ? x : undefined;
      },
    );
    const dataBytes = fs.statSync(store.path('centos7')).size;
    expect(st.bytesSent).to.be.at.least(dataBytes * 0.9);
    expect(st.bytesSent / dataBytes, 'merged requests: far less than once per receiver').to.be.below(2);
  });

  it('completes and verifies with 5% induced loss at every receiver', async () => {
    const rs = [5, 6, 7].map((k) => receive({ localAddress: `127.0.0.${k}`, lossRate: 0.05 }));
    const stats = await Promise.all(rs.map((r) => r.done));
    for (const r of rs) expect(sha256(r.target.buf)).to.equal(rawSha);
    for (const s of stats) {
      expect(s.datagramsDropped).to.be.greaterThan(0);
      expect(s.datagramsLost, 'loss shows as sequence gaps').to.be.greaterThan(0);
    }
  });

  it('a receiver that joins halfway through another one completes', async () => {
    const total = store.get('centos7').storedChunks;
    let late: ReturnType<typeof receive> | undefined;
    const early = receive({
      localAddress: '127.0.0.9',
      onProgress: (p) => {
        if (p.chunksDone >= total / 2 && !late) late = receive({ localAddress: '127.0.0.10' });
      },
    });
    const a = await early.done;
    expect(late, 'late receiver started').to.not.equal(undefined);
    const b = await late!.done;
    expect(sha256(early.target.buf)).to.equal(rawSha);
    expect(sha256(late!.target.buf)).to.equal(rawSha);
    expect(a.chunksWritten).to.equal(total);
    expect(b.chunksWritten).to.equal(total);
  });

  it('falls back with FallbackError (reason no_data) within its timeout when the sender vanishes', async () => {
    let ended = false;
    const r = receive({
      localAddress: '127.0.0.11',
      noDataTimeoutMs: 800,
      onProgress: () => {
        if (!ended) {
          ended = true;
          void sessions.end('centos7', 'test');
        }
      },
    });
    const t0 = Date.now();
    let err: unknown;
    try {
      await r.done;
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FallbackError);
    const e = err as FallbackError;
    expect(e.reason).to.equal('no_data');
    expect(e.message).to.match(/falling back/);
    expect(Date.now() - t0).to.be.below(5000);
  });
});
