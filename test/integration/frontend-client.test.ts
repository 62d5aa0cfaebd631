import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { FrontendClient } from '../../node-installer/frontend-client.js';
import { ProgressReporter, type ReportSink } from '../../node-installer/report/progress.js';
import { type InstallReport, REPORT_PATH } from '../../protocol/install.js';

interface ReportServer {
  port: number;
  bodies: InstallReport[];
  close(): Promise<void>;
}

/** A frontend stand-in on loopback answering report POSTs with `statuses` in order (the last one from then on). */
async function reportServer(statuses: number[], port = 0): Promise<ReportServer> {
  const bodies: InstallReport[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === REPORT_PATH && req.method === 'POST') bodies.push(JSON.parse(body) as InstallReport);
      const status = statuses[Math.min(bodies.length, statuses.length) - 1] ?? 404;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status < 300 ? 'ok\n' : `status ${status}\n`);
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, bodies, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A client of `port` with a log kept in `lines`; its waits between tries run `onSleep` instead of sleeping. */
function client(port: number, o: { deadlineSeconds?: number; onSleep?: () => Promise<void> } = {}) {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  let sleeps = 0;
  const c = new FrontendClient({
    frontend: `http://127.0.0.1:${port}`,
    log,
    deadlineSeconds: o.deadlineSeconds,
    sleep: async () => {
      sleeps++;
      await o.onSleep?.();
    },
  });
  return { c, lines, sleeps: () => sleeps };
}

const DONE: InstallReport = { state: 'done', bytesDone: 10, reason: 'sha256 abc' };

describe('installer: the final report', function () {
  this.timeout(20_000);

  it('is sent again while the frontend answers 5xx, until it is taken', async () => {
    const srv = await reportServer([503, 502, 200]);
    const { c, sleeps } = client(srv.port);
    try {
      await c.reportSurely(DONE);
      expect(srv.bodies).to.have.length(3);
      expect(srv.bodies.every((b) => b.state === 'done' && b.reason === 'sha256 abc')).to.equal(true);
      expect(sleeps()).to.equal(2);
    } finally {
      await c.close();
      await srv.close();
    }
  });

  it('is sent again while the frontend cannot be reached, and reaches it once it is back on its port', async () => {
    const gone = await reportServer([200]);
    await gone.close();
    let back: ReportServer | undefined;
    const { c, lines } = client(gone.port, { onSleep: async () => void (back ??= await reportServer([200], gone.port)) });
    try {
      await c.reportSurely(DONE);
      expect(back!.bodies.map((b) => b.state)).to.deep.equal(['done']);
      expect(lines.some((l) => l.includes('frontend not ready; retrying'))).to.equal(true);
    } finally {
      await c.close();
      await back?.close();
    }
  });

  it('is not sent again when the frontend refuses it (4xx), and nothing is thrown', async () => {
    const srv = await reportServer([400]);
    const { c, lines } = client(srv.port);
    try {
      await c.reportSurely(DONE);
      expect(srv.bodies).to.have.length(1);
      expect(lines.some((l) => l.includes('final report not delivered') && l.includes('HTTP 400'))).to.equal(true);
    } finally {
      await c.close();
      await srv.close();
    }
  });

  it('gives up at the deadline without throwing', async () => {
    const srv = await reportServer([503]);
    const { c, lines } = client(srv.port, { deadlineSeconds: 0 });
    try {
      await c.reportSurely(DONE);
      expect(srv.bodies).to.have.length(1);
      expect(lines.some((l) => l.includes('final report not delivered') && l.includes('deadline'))).to.equal(true);
    } finally {
      await c.close();
      await srv.close();
    }
  });

  it('is what the progress reporter uses for done; other states stay best effort', async () => {
    const calls: string[] = [];
    const sink: ReportSink = {
      report: async (r) => void calls.push(`report ${r.state}`),
      reportSurely: async (r) => void calls.push(`surely ${r.state}`),
    };
    const p = new ProgressReporter(sink, pino({ level: 'silent' }));
    for (const s of ['profile', 'downloading', 'verifying', 'post', 'done'] as const) await p.setState(s);
    await new ProgressReporter(sink, pino({ level: 'silent' })).setState('failed', 'no');
    expect(calls).to.deep.equal(['report profile', 'report downloading', 'report verifying', 'report post', 'surely done', 'report failed']);
  });
});
