import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import Router from '@koa/router';
import Koa from 'koa';
import pino from 'pino';
import { TemplateError } from '../../protocol/errors.js';
import { type NodeName, parseNodeName } from '../../protocol/node.js';
import { KICKSTART_PATH, OMF_CLEAR_BOOT_IMAGE_PATH, OMF_SET_BOOT_IMAGE_PATH, SETPXEBOOT_PATH } from '../../protocol/api.js';
import { HttpServer } from '../../server/http/server.js';
import { type TestServer, startTestServer } from '../helpers/http.js';
import { skipBecause } from '../helpers/skip.js';
import { until } from '../helpers/until.js';

const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';

function kickstartEvents(s: TestServer, name: string): { status: unknown; message: string }[] {
  return s.inventory
    .events(name as NodeName, 100)
    .filter((e) => e.kind === 'kickstart')
    .map((e) => ({ status: e.data?.status, message: e.message }));
}

describe('http: kickstart.cgi', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer({ maxInFlight: 2, retryAfterSeconds: 9 });
    s.addNode('compute-0-0', MAC_A, '127.0.1.1', 'install');
    s.addNode('compute-0-1', MAC_B, '127.0.1.2', 'os');
  });
  afterEach(() => s.close());

  it('serves the kickstart of the node found by source IP', async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.1.1' });
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.equal('text/plain; charset=utf-8');
    expect(r.text).to.equal('# kickstart for compute-0-0\nnetwork --ip=127.0.1.1\n');
    expect(kickstartEvents(s, 'compute-0-0').map((e) => e.status)).to.deep.equal([200]);
  });

  it('tells distinct source IPs apart', async () => {
    s.inventory.setBootAction({ all: true }, 'install');
    const [a, b] = await Promise.all([s.request({ path: KICKSTART_PATH, from: '127.0.1.1' }), s.request({ path: KICKSTART_PATH, from: '127.0.1.2' })]);
    expect(a.text).to.contain('compute-0-0');
    expect(b.text).to.contain('compute-0-1');
  });

  it('identifies by X-RHN-Provisioning-MAC-0 and checks it against the source IP', async () => {
    const ok = await s.request({ path: KICKSTART_PATH, from: '127.0.1.1', headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${MAC_A.toUpperCase()}` } });
    expect(ok.status).to.equal(200);
    expect(ok.text).to.contain('compute-0-0');
    const ev = s.inventory.events('compute-0-0' as NodeName).filter((e) => e.kind === 'kickstart');
    expect(ev[0]!.data).to.include({ status: 200, ip: '127.0.1.1', mac: MAC_A });
  });

  it('prefers the announced MAC that is registered over an earlier unknown one', async () => {
    const r = await s.request({
      path: KICKSTART_PATH,
      from: '127.0.1.1',
      headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:00:ff:ff:ff', 'X-RHN-Provisioning-MAC-1': `eth1 ${MAC_A}` },
    });
    expect(r.status).to.equal(200);
    expect(r.text).to.contain('compute-0-0');
  });

  it('403 when the MAC belongs to a node registered with another IP, naming neither to the requester', async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.9.9', headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${MAC_A}` } });
    expect(r.status).to.equal(403);
    // The answer names the MAC and the requester's IP, never the owning node or its address.
    expect(r.text).to.contain(MAC_A).and.contain('127.0.9.9').and.not.contain('compute-0-0').and.not.contain('127.0.1.1');
    expect(kickstartEvents(s, 'compute-0-0').map((e) => e.status)).to.deep.equal([403]);
    const ev = s.inventory.events(parseNodeName('compute-0-0')).filter((e) => e.kind === 'kickstart');
    expect(ev[0]!.message).to.contain('compute-0-0').and.contain('127.0.1.1').and.contain('127.0.9.9');
  });

  it('403 when the boot action is not install', async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.1.2' });
    expect(r.status).to.equal(403);
    expect(r.text).to.contain('boot action os');
    expect(kickstartEvents(s, 'compute-0-1').map((e) => e.status)).to.deep.equal([403]);
    expect(s.renderer.rendered).to.deep.equal([]);
  });

  it('404 names the IP looked up', async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.7.7' });
    expect(r.status).to.equal(404);
    expect(r.headers['content-type']).to.contain('text/plain');
    expect(r.text).to.contain('IP 127.0.7.7');
  });

  it('404 names the MAC looked up', async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.7.7', headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 02:00:00:00:00:99' } });
    expect(r.status).to.equal(404);
    expect(r.text).to.contain('MAC 02:00:00:00:00:99');
  });

  it('400 naming the header when the MAC header is malformed', async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.1.1', headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:zz' } });
    expect(r.status).to.equal(400);
    expect(r.text).to.contain('X-RHN-Provisioning-MAC-0');
  });

  it('503 with Retry-After while maxInFlight requests are held open (slow asynchronous render), recorded, and serves again afterwards', async () => {
    s.renderer.delayMs = 300;
    const all = await Promise.all(Array.from({ length: 6 }, () => s.request({ path: KICKSTART_PATH, from: '127.0.1.1' })));
    const statuses = all.map((r) => r.status).sort();
    expect(statuses.filter((x) => x === 200)).to.have.length(2);
    expect(statuses.filter((x) => x === 503)).to.have.length(4);
    const busy = all.find((r) => r.status === 503)!;
    expect(busy.headers['retry-after']).to.equal('9');
    expect(busy.text).to.contain('busy');
    expect(kickstartEvents(s, 'compute-0-0').filter((e) => e.status === 503)).to.have.length(4);
    s.renderer.delayMs = 0;
    expect((await s.request({ path: KICKSTART_PATH, from: '127.0.1.1' })).status).to.equal(200);
  });

  it('normal load: 64 requests at once, each rendered synchronously at once, all get 200 (maxInFlight 2)', async () => {
    const all = await Promise.all(Array.from({ length: 64 }, () => s.request({ path: KICKSTART_PATH, from: '127.0.1.1' })));
    expect(all.map((r) => r.status)).to.deep.equal(Array.from({ length: 64 }, () => 200));
    expect(kickstartEvents(s, 'compute-0-0').map((e) => e.status)).to.deep.equal(Array.from({ length: 64 }, () => 200));
  });

  it('500 on a template error: file:line in the body, the log and the history', async () => {
    s.renderer.failWith = new TemplateError('templates/kickstart.hbs', 12, 'missing attribute "rootpw"');
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.1.1' });
    expect(r.status).to.equal(500);
    expect(r.text).to.contain('templates/kickstart.hbs:12');
    expect(s.logs.some((l) => l.msg === 'template error' && String(l.err).includes('kickstart.hbs:12'))).to.equal(true);
    expect(kickstartEvents(s, 'compute-0-0')[0]!.status).to.equal(500);
  });

  it('500 on an unexpected error hides the details from the client', async () => {
    s.renderer.failWith = new Error('secret internals');
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.1.1' });
    expect(r.status).to.equal(500);
    expect(r.text).to.equal('internal error\n');
    expect(JSON.stringify(s.logs)).to.contain('secret internals');
  });

  it('logs one structured line per request', async () => {
    await s.request({ path: `${KICKSTART_PATH}?x=1`, from: '127.0.1.2' });
    const line = s.logs.find((l) => l.msg === 'request' && l.url === `${KICKSTART_PATH}?x=1`)!;
    expect(line).to.include({ method: 'GET', status: 403, ip: '127.0.1.2', subsystem: 'http' });
    expect(line.ms).to.be.a('number');
  });
});

describe('http: setPxeboot.cgi', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer();
    s.addNode('compute-0-0', MAC_A, '127.0.2.1', 'install');
    s.addNode('compute-0-1', MAC_B, '127.0.2.2', 'install');
  });
  afterEach(() => s.close());
  const action = (name: string): string => s.inventory.getNode(name)!.bootAction;

  it('GET ?action=os flips only the requester, idempotently', async () => {
    const a = await s.request({ path: `${SETPXEBOOT_PATH}?action=os`, from: '127.0.2.1' });
    expect(a.status).to.equal(200);
    expect(a.text).to.equal('compute-0-0: boot action install -> os\n');
    const b = await s.request({ path: `${SETPXEBOOT_PATH}?action=os`, from: '127.0.2.1' });
    expect(b.status).to.equal(200);
    expect(b.text).to.contain('unchanged');
    expect(action('compute-0-0')).to.equal('os');
    expect(action('compute-0-1')).to.equal('install');
    const boots = s.inventory.events('compute-0-0' as NodeName).filter((e) => e.kind === 'boot');
    expect(boots.map((e) => e.message)).to.deep.equal(['boot action install -> os (node request)']);
  });

  it('accepts ROCKS params={"action":"os"} in the query', async () => {
    const r = await s.request({ path: `${SETPXEBOOT_PATH}?params=${encodeURIComponent('{"action":"os"}')}`, from: '127.0.2.2' });
    expect(r.status).to.equal(200);
    expect(action('compute-0-1')).to.equal('os');
  });

  it('accepts POST form bodies (action= and params=) and JSON bodies', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect((await s.request({ method: 'POST', path: SETPXEBOOT_PATH, from: '127.0.2.1', headers: form, body: 'action=os' })).status).to.equal(200);
    expect(action('compute-0-0')).to.equal('os');
    s.inventory.setBootAction({ names: [parseNodeName('compute-0-0')] }, 'install', 'test');
    const params = `params=${encodeURIComponent('{"action":"os"}')}`;
    expect((await s.request({ method: 'POST', path: SETPXEBOOT_PATH, from: '127.0.2.1', headers: form, body: params })).status).to.equal(200);
    expect(action('compute-0-0')).to.equal('os');
    s.inventory.setBootAction({ names: [parseNodeName('compute-0-0')] }, 'install', 'test');
    expect((await s.request({ method: 'POST', path: SETPXEBOOT_PATH, from: '127.0.2.1', body: { params: { action: 'os' } } })).status).to.equal(200);
    expect(action('compute-0-0')).to.equal('os');
  });

  it('400 for a missing or unknown action, 404 for an unknown requester', async () => {
    const missing = await s.request({ path: SETPXEBOOT_PATH, from: '127.0.2.1' });
    expect(missing.status).to.equal(400);
    expect(missing.text).to.contain('missing action');
    expect((await s.request({ path: `${SETPXEBOOT_PATH}?action=reboot`, from: '127.0.2.1' })).status).to.equal(400);
    expect((await s.request({ path: `${SETPXEBOOT_PATH}?params=%7Bnot-json`, from: '127.0.2.1' })).status).to.equal(400);
    const unknown = await s.request({ path: `${SETPXEBOOT_PATH}?action=os`, from: '127.0.2.99' });
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.contain('IP 127.0.2.99');
    expect(action('compute-0-0')).to.equal('install');
  });

  it('413 for a body beyond 64 KiB', async () => {
    const r = await s.request({ method: 'POST', path: SETPXEBOOT_PATH, from: '127.0.2.1', body: `action=os&x=${'a'.repeat(70 * 1024)}` });
    expect(r.status).to.equal(413);
    expect(action('compute-0-0')).to.equal('install');
  });
});

describe('http: OMF /pxe routes', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer();
    s.addNode('node1-2', MAC_A, '10.18.1.2', 'os');
  });
  afterEach(() => s.close());

  it('setBootImage sets install and keeps the image; clearBootImage sets os', async () => {
    const set = await s.request({ path: `${OMF_SET_BOOT_IMAGE_PATH}?node=node1-2.sb8.orbit-lab.org&image=baseline-2.1.ndz`, token: true });
    expect(set.status).to.equal(200);
    expect(set.headers['content-type']).to.equal('application/xml; charset=utf-8');
    expect(set.text).to.equal(`<?xml version='1.0'?>\n<setBootImage status="OK">\n  <node name="node1-2" action="install" image="baseline-2.1.ndz"/>\n</setBootImage>\n`);
    expect(s.inventory.getNode('node1-2')).to.deep.include({ bootAction: 'install', attrs: { 'omf.image': 'baseline-2.1.ndz' } });
    const clear = await s.request({ path: `${OMF_CLEAR_BOOT_IMAGE_PATH}?node=node1-2`, token: true });
    expect(clear.status).to.equal(200);
    expect(clear.text).to.contain('<clearBootImage status="OK">').and.contain('action="os"');
    expect(s.inventory.getNode('node1-2')!.bootAction).to.equal('os');
  });

  it('404 unknown node, 400 bad name or image, as XML', async () => {
    const unknown = await s.request({ path: `${OMF_SET_BOOT_IMAGE_PATH}?node=node9-9`, token: true });
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.contain('<ERROR code="not_found">');
    expect((await s.request({ path: `${OMF_CLEAR_BOOT_IMAGE_PATH}?node=node9-9`, token: true })).status).to.equal(404);
    expect((await s.request({ path: `${OMF_SET_BOOT_IMAGE_PATH}?node=Bad_Name!`, token: true })).status).to.equal(400);
    expect((await s.request({ path: OMF_CLEAR_BOOT_IMAGE_PATH, token: true })).status).to.equal(400);
    expect((await s.request({ path: `${OMF_SET_BOOT_IMAGE_PATH}?node=node1-2&image=../etc/passwd`, token: true })).status).to.equal(400);
    expect(s.inventory.getNode('node1-2')!.bootAction).to.equal('os');
  });
});

describe('http: app and server', () => {
  it('mounts extra routers, answers 404/405 for unknown routes and methods', async () => {
    const extra = new Router();
    extra.get('/extra/ping', (ctx) => {
      ctx.body = 'pong';
    });
    const s = await startTestServer({ extraRouters: [extra] });
    try {
      expect((await s.request({ path: '/extra/ping' })).text).to.equal('pong');
      expect((await s.request({ path: '/nope' })).status).to.equal(404);
      expect((await s.request({ method: 'DELETE', path: KICKSTART_PATH })).status).to.equal(405);
    } finally {
      await s.close();
    }
  });

  it('close() is idempotent and drops keep-alive sockets', async () => {
    const s = await startTestServer();
    const http = await import('node:http');
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: s.port, path: '/nope', agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
    });
    const t0 = Date.now();
    await Promise.all([s.close(), s.close()]);
    expect(Date.now() - t0).to.be.lessThan(1000);
    agent.destroy();
  });

  it('listens with the backlog asked for (default 4096), as far as net.core.somaxconn allows, and logs it', async function () {
    let somaxconn: number;
    try {
      somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
      execFileSync('ss', ['-V'], { stdio: 'ignore' });
    } catch {
      return skipBecause(this, "needs Linux and ss (iproute2) to see a listening socket's backlog");
    }
    /** A LISTEN socket's Send-Q in `ss -ltn` is its backlog. */
    const backlogOf = (port: number): number =>
      Number(
        execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' })
          .trim()
          .split(/\s+/)[2],
      );
    const logs: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
    for (const [asked, expected] of [
      [undefined, Math.min(4096, somaxconn)],
      [100, Math.min(100, somaxconn)],
    ] as const) {
      const server = new HttpServer(new Koa(), { listen: '127.0.0.1', httpPort: 0, backlog: asked, log });
      const { port } = await server.start();
      try {
        expect(backlogOf(port)).to.equal(expected);
        expect(logs.find((l) => l.msg === 'http listening' && l.port === port)).to.include({ backlog: expected });
      } finally {
        await server.close();
      }
    }
  });
});

describe('http: kickstart.cgi under more load than the thread can answer', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer({ maxInFlight: 64, maxLoopDelayMs: 30, retryAfterSeconds: 9 });
    s.addNode('compute-0-0', MAC_A, '127.0.1.1', 'install');
  });
  afterEach(() => s.close());

  it('answers 503 + Retry-After while slow synchronous renders keep the event loop late, and 200 again once it keeps up', async () => {
    // Every render keeps the one thread busy for 80 ms, as an overloaded frontend's is:
    // every turn of the event loop is long, so everything else waits that long.
    s.renderer.busyMs = 80;
    const all = await Promise.all(Array.from({ length: 16 }, () => s.request({ path: KICKSTART_PATH, from: '127.0.1.1' })));
    const ok = all.filter((r) => r.status === 200);
    const busy = all.filter((r) => r.status === 503);
    expect(ok.length + busy.length, 'only 200s and 503s').to.equal(16);
    expect(ok.length, 'served until the first half-second window shows the delay').to.be.at.least(3);
    expect(busy.length, 'refused after that').to.be.at.least(4);
    for (const r of busy) {
      expect(r.headers['retry-after']).to.equal('9');
      expect(r.text).to.match(/^kickstart\.cgi: busy \(event loop \d+ ms late, at most 30\); retry in 9 s\n$/);
    }
    expect(s.renderer.rendered, 'a refused request is not rendered').to.have.length(ok.length);
    expect(kickstartEvents(s, 'compute-0-0').filter((e) => e.status === 503)).to.have.length(busy.length);
    s.renderer.busyMs = 0;
    await until('kickstart.cgi to serve again', async () => (await s.request({ path: KICKSTART_PATH, from: '127.0.1.1' })).status === 200);
    const again = await Promise.all(Array.from({ length: 16 }, () => s.request({ path: KICKSTART_PATH, from: '127.0.1.1' })));
    expect(again.map((r) => r.status)).to.deep.equal(Array.from({ length: 16 }, () => 200));
  });
});
