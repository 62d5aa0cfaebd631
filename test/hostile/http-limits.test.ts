/**
 * What one host can make the HTTP server hold: slow bodies, slow headers,
 * bodies cut off mid-way, and more connections than allowed. Each gets its
 * exact answer, and a well-behaved node is served meanwhile and afterwards.
 */
import net from 'node:net';
import { expect } from 'chai';
import { API_NODES_PATH, KICKSTART_PATH, SETPXEBOOT_PATH } from '../../protocol/api.js';
import { type TestServer, startTestServer } from '../helpers/http.js';
import { until } from '../helpers/until.js';

const GOOD_MAC = '52:54:00:ee:00:01';
const GOOD_IP = '127.0.1.1';
const ATTACKER = '127.0.66.6';

async function goodNodeServed(s: TestServer): Promise<void> {
  const r = await s.request({ path: KICKSTART_PATH, from: GOOD_IP, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${GOOD_MAC}` } });
  expect(r.status).to.equal(200);
}

/** A raw connection that records what it receives and when it closes. */
interface Raw {
  sock: net.Socket;
  received(): string;
  closed: Promise<void>;
}

async function connect(s: TestServer, from = ATTACKER): Promise<Raw> {
  const sock = net.connect({ host: '127.0.0.1', port: s.port, localAddress: from });
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return { sock, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

describe('hostile: HTTP limits', () => {
  let s: TestServer;
  afterEach(() => s.close());

  it('fifty slow-body POSTs each get a 408, a log line, and their connection closed', async function () {
    this.timeout(120_000);
    s = await startTestServer({ limits: { bodyTimeoutMs: 1500, maxConnectionsPerIp: 100 } });
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
    s.addNode('evil-0-0', '52:54:00:ee:00:66', ATTACKER, 'install'); // a compromised node: setPxeboot.cgi reads its bodies
    const conns: Raw[] = [];
    for (let i = 0; i < 50; i++) {
      const c = await connect(s);
      const path = i % 2 === 0 ? SETPXEBOOT_PATH : API_NODES_PATH;
      c.sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"state":`);
      conns.push(c);
    }
    await goodNodeServed(s); // served while they hang
    await Promise.all(conns.map((c) => c.closed));
    for (const c of conns) expect(c.received()).to.match(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    const lines = s.logs.filter((l) => l.status === 408 && String(l.msg).startsWith('request body not received within 1500 ms'));
    expect(lines.length).to.equal(50);
    expect(s.logs.filter((l) => l.level === 50 || Number(l.status) >= 500)).to.deep.equal([]);
    await goodNodeServed(s);
  });

  it('headers sent one byte at a time are cut off after the headers timeout', async function () {
    this.timeout(60_000);
    s = await startTestServer({ limits: { headersTimeoutMs: 1000 } });
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
    const c = await connect(s);
    const header = `GET ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\nX-Slow: `;
    let i = 0;
    const drip = setInterval(() => {
      if (!c.sock.destroyed) c.sock.write(i < header.length ? header[i++]! : 'a');
    }, 50);
    try {
      await c.closed;
    } finally {
      clearInterval(drip);
    }
    expect(c.received()).to.match(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    await goodNodeServed(s);
  });

  it('a body cut off mid-way is a 4xx with a log line, never a 500', async () => {
    s = await startTestServer();
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
    for (const path of [API_NODES_PATH, SETPXEBOOT_PATH]) {
      const c = await connect(s, GOOD_IP);
      // Expect: 100-continue makes the server say when it has the request and wants the body.
      c.sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\nContent-Type: application/json\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n`);
      await until('100 Continue', () => c.received().startsWith('HTTP/1.1 100 Continue\r\n'));
      c.sock.end('{"name":"x', () => c.sock.destroy());
      const line = await until(`the log line of the cut-off POST ${path}`, () => s.logs.find((x) => x.msg === 'request' && x.url === path && x.method === 'POST'));
      expect(line.status, path).to.equal(400);
    }
    expect(s.logs.filter((l) => Number(l.status) >= 500 || l.level === 50)).to.deep.equal([]);
    await goodNodeServed(s);
  });

  it('connections beyond the per-address cap get a 503 and are closed; other nodes are served', async () => {
    s = await startTestServer({ limits: { maxConnectionsPerIp: 5 } });
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
    s.addNode('evil-0-0', '52:54:00:ee:00:66', ATTACKER, 'install');
    const held: Raw[] = [];
    for (let i = 0; i < 5; i++) held.push(await connect(s));
    const extra: Raw[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connect(s);
      // Sent at once on the refused connection: it must never be handled.
      c.sock.write(`GET ${SETPXEBOOT_PATH}?action=os HTTP/1.1\r\nHost: x\r\n\r\n`);
      extra.push(c);
    }
    await Promise.all(extra.map((c) => c.closed));
    for (const c of extra)
      expect(c.received()).to.equal('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n');
    expect(s.inventory.getNode('evil-0-0')!.bootAction).to.equal('install');
    for (const c of held) expect(c.sock.destroyed).to.equal(false);
    await goodNodeServed(s);
    for (const c of held) c.sock.destroy();
    await Promise.all(held.map((c) => c.closed));
    // Once they are gone, the same address is served again (poll: the server sees the closes a moment later).
    let status = 0;
    await until(
      () => `a 200 for the address again (last ${status})`,
      async () =>
        (status = await s.request({ path: KICKSTART_PATH, from: ATTACKER }).then(
          (r) => r.status,
          () => 0,
        )) === 200,
      5000,
      50,
    );
  });

  it('connections beyond the total cap get a 503 and are closed', async () => {
    s = await startTestServer({ limits: { maxConnections: 6, maxConnectionsPerIp: 100 } });
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
    const held: Raw[] = [];
    for (let i = 0; i < 6; i++) held.push(await connect(s, `127.0.66.${10 + i}`));
    const extra = await connect(s, '127.0.66.99');
    await extra.closed;
    expect(extra.received()).to.match(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    for (const c of held) c.sock.destroy();
    await Promise.all(held.map((c) => c.closed));
    let status = 0;
    await until(
      () => `a 200 once the connections are gone (last ${status})`,
      async () =>
        (status = await s.request({ path: KICKSTART_PATH, from: GOOD_IP }).then(
          (r) => r.status,
          () => 0,
        )) === 200,
      5000,
      50,
    );
  });
});
