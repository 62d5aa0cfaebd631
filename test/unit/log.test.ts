import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';
import { Writable } from 'node:stream';
import pino from 'pino';
import { requestLog } from '../../server/http/app.js';
import { createLogger } from '../../server/log.js';

function capture(level = 'debug') {
  const lines: { level: number; msg: string; url?: string }[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: createLogger(level, { dest }), lines };
}

async function request(mw: ReturnType<typeof requestLog>, path: string, status: number): Promise<void> {
  const ctx = { method: 'GET', url: path, path, status, req: { socket: { remoteAddress: '::ffff:127.0.0.1' } } };
  await mw(ctx as never, async () => undefined);
}

describe('logging', () => {
  after(cleanupTmpDirs);

  it('pretty: one human line per entry (time, level, part, message, fields); json: one object per line', () => {
    for (const format of ['pretty', 'json'] as const) {
      const file = path.join(tmpDir(), 'log');
      const fd = fs.openSync(file, 'w');
      createLogger('info', { format, fd }).child({ part: 'http' }).info({ port: 8080 }, 'http listening');
      fs.closeSync(fd);
      const text = fs.readFileSync(file, 'utf8');
      if (format === 'pretty') expect(text).to.match(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: \[http\] http listening \{"port":8080\}\n$/);
      else expect(JSON.parse(text)).to.include({ level: 30, part: 'http', port: 8080, msg: 'http listening' });
    }
  });

  it('logs the requests nodes repeat during an install at debug, the others at info, 5xx at warn', async () => {
    const { log, lines } = capture();
    const mw = requestLog(log);
    for (const p of ['/announce', '/scrape', '/install/images/compute', '/install/boot/kickswarm/vmlinuz', '/install/sbin/public/report.cgi', '/metrics']) await request(mw, p, 200);
    await request(mw, '/install/sbin/kickstart.cgi', 200);
    await request(mw, '/install/images/compute', 503);
    await request(mw, '/announce-not', 200);
    const levelOf = (url: string, status?: number) => lines.filter((l) => l.url === url).map((l) => pino.levels.labels[l.level])[status === 503 ? 1 : 0];
    for (const p of ['/announce', '/scrape', '/install/images/compute', '/install/boot/kickswarm/vmlinuz', '/install/sbin/public/report.cgi', '/metrics']) expect(levelOf(p), p).to.equal('debug');
    expect(levelOf('/install/sbin/kickstart.cgi')).to.equal('info');
    expect(levelOf('/install/images/compute', 503)).to.equal('warn');
    expect(levelOf('/announce-not')).to.equal('info');
  });

  it('at info, a cluster announcing and fetching ranges writes nothing', async () => {
    const { log, lines } = capture('info');
    const mw = requestLog(log);
    for (let i = 0; i < 100; i++) await request(mw, i % 2 ? '/announce' : '/install/images/compute', i % 2 ? 200 : 206);
    expect(lines).to.deep.equal([]);
  });
});
