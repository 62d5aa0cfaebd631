/**
 * Hostile hosts and nodes against the node-facing routes: a node cannot give
 * itself `install` or `capture`, pipelined requests on a dying connection do
 * not leave kickstart.cgi busy, a peer without an IPv4 source address gets no
 * kickstart, and a refused requester learns nothing about other nodes. After
 * every attack a well-behaved node still gets its kickstart.
 */
import net from 'node:net';
import { expect } from 'chai';
import { KICKSTART_PATH, SETPXEBOOT_PATH } from '../../protocol/api.js';
import { type TestServer, startTestServer } from '../helpers/http.js';
import { skipBecause } from '../helpers/skip.js';
import { until } from '../helpers/until.js';

const GOOD_MAC = '52:54:00:bb:00:01';
const GOOD_IP = '127.0.1.1';
const NODE_MAC = '52:54:00:bb:00:02';
const NODE_IP = '127.0.1.2';

async function goodNodeServed(s: TestServer): Promise<void> {
  const r = await s.request({ path: KICKSTART_PATH, from: GOOD_IP, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${GOOD_MAC}` } });
  expect(r.status).to.equal(200);
  expect(r.text).to.equal(`# kickstart for good-0-0\nnetwork --ip=${GOOD_IP}\n`);
}

/** Polls kickstart.cgi for the good node until it answers 200 (the busy gauge is idle again). */
async function kickstartServedAgain(s: { request(o: { path: string; from: string }): Promise<{ status: number }> }): Promise<void> {
  let last = 0;
  await until(
    () => `a 200 from kickstart.cgi (last answer ${last})`,
    async () => (last = (await s.request({ path: KICKSTART_PATH, from: GOOD_IP })).status) === 200,
    5000,
    50,
  );
}

describe('hostile: node-facing routes', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer({ maxInFlight: 4 });
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
  });
  afterEach(() => s.close());

  it('setPxeboot.cgi: a node cannot set itself to install or capture, in any form', async () => {
    s.addNode('node-0-0', NODE_MAC, NODE_IP, 'os');
    const asks: { method?: string; path: string; body?: string | object; headers?: Record<string, string> }[] = [
      { path: `${SETPXEBOOT_PATH}?action=install` },
      { path: `${SETPXEBOOT_PATH}?action=capture` },
      { path: `${SETPXEBOOT_PATH}?params=${encodeURIComponent('{"action":"install"}')}` },
      { path: `/INSTALL/sbin/public/setPxeboot.cgi?action=install` },
      { method: 'POST', path: SETPXEBOOT_PATH, body: 'action=install', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      { method: 'POST', path: SETPXEBOOT_PATH, body: { params: { action: 'capture' } } },
    ];
    for (const a of asks) {
      const r = await s.request({ ...a, from: NODE_IP });
      expect(r.status, a.path).to.equal(403);
      expect(r.text).to.match(/^setPxeboot\.cgi: a node may only flip its own boot action from install to os, not os -> (install|capture) /);
      expect(s.inventory.getNode('node-0-0')!.bootAction).to.equal('os');
    }
    // From install, capture is refused too; os is the one flip allowed, and asking again is a no-op.
    s.inventory.setBootAction({ names: ['node-0-0' as never] }, 'install', 'test');
    expect((await s.request({ path: `${SETPXEBOOT_PATH}?action=capture`, from: NODE_IP })).status).to.equal(403);
    expect(s.inventory.getNode('node-0-0')!.bootAction).to.equal('install');
    const ok = await s.request({ path: `${SETPXEBOOT_PATH}?action=os`, from: NODE_IP });
    expect(ok.status).to.equal(200);
    expect(ok.text).to.equal('node-0-0: boot action install -> os\n');
    expect((await s.request({ path: `${SETPXEBOOT_PATH}?action=os`, from: NODE_IP })).text).to.equal('node-0-0: boot action os (unchanged)\n');
    await goodNodeServed(s);
  });

  it('pipelined kickstart requests on a connection that dies do not leave kickstart.cgi busy', async () => {
    for (let round = 0; round < 3; round++) {
      const sock = net.connect({ host: '127.0.0.1', port: s.port, localAddress: GOOD_IP });
      sock.on('error', () => undefined);
      await new Promise((r) => sock.once('connect', r));
      sock.write(`GET ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(20));
      sock.destroy();
    }
    // Every one of those connections is gone: the gauge must be back to idle, so the node is served (not 503).
    await kickstartServedAgain(s);
    await goodNodeServed(s);
  });

  it('pipelined requests from a client that never reads stop counting once its connection is closed', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: s.port, localAddress: GOOD_IP });
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    sock.write(`GET ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(50));
    await until('the server to take in as many requests as it holds open', () => s.renderer.rendered.length >= 4);
    sock.destroy();
    await kickstartServedAgain(s);
  });

  it("a 403 for a MAC registered to another address names neither the node nor its address (only the requester's own)", async () => {
    const r = await s.request({ path: KICKSTART_PATH, from: '127.0.66.6', headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${GOOD_MAC}` } });
    expect(r.status).to.equal(403);
    expect(r.text).to.equal(`kickstart.cgi: MAC ${GOOD_MAC} is not registered for IP 127.0.66.6\n`);
    const unknown = await s.request({ path: KICKSTART_PATH, from: '127.0.66.6', headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:00:ff:ff:ff' } });
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.equal('kickstart.cgi: no node registered for MAC 52:54:00:ff:ff:ff\n');
    await goodNodeServed(s);
  });
});

describe('hostile: kickstart.cgi over IPv6', () => {
  it('a peer with no IPv4 source address gets no kickstart, whatever MAC it names', async function () {
    const s = await startTestServer({ listen: '::' }).catch(() => undefined);
    if (!s) return skipBecause(this, 'cannot listen on :: (no IPv6 on this machine)');
    try {
      s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
      const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const sock = net.connect({ host: '::1', port: s.port });
        const chunks: Buffer[] = [];
        sock.on('data', (c: Buffer) => chunks.push(c));
        sock.on('error', reject);
        sock.on('close', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text: text.split('\r\n\r\n')[1] ?? '' });
        });
        sock.write(`GET ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-RHN-Provisioning-MAC-0: eth0 ${GOOD_MAC}\r\n\r\n`);
      });
      expect(r.status).to.equal(403);
      expect(r.text).to.equal('kickstart.cgi: the request has no IPv4 source address to check\n');
      expect(s.renderer.rendered).to.deep.equal([]);
      // The same server still serves the node over IPv4 (a dual-stack socket: ::ffff:127.0.1.1).
      const ok = await s.request({ path: KICKSTART_PATH, from: GOOD_IP, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${GOOD_MAC}` } });
      expect(ok.status).to.equal(200);
    } finally {
      await s.close();
    }
  });
});
