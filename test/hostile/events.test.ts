/**
 * A hostile host makes the frontend record node events (each refused
 * kickstart is one). Whatever the order of the writes, a node's history
 * stays bounded, and the well-behaved node is still served.
 */
import http from 'node:http';
import { expect } from 'chai';
import { KICKSTART_PATH } from '../../protocol/api.js';
import type { NodeName } from '../../protocol/node.js';
import { EVENTS_PER_NODE } from '../../server/inventory/events.js';
import { type TestServer, startTestServer } from '../helpers/http.js';

const A = { name: 'a-0-0', mac: '52:54:00:dd:00:01', ip: '127.0.1.1' };
const B = { name: 'b-0-0', mac: '52:54:00:dd:00:02', ip: '127.0.1.2' };

function eventCount(s: TestServer, name: string): number {
  s.inventory.flushEvents();
  return s.inventory.events(name as NodeName, 100_000).length;
}

describe('hostile: node event history', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer();
    s.addNode(A.name, A.mac, A.ip, 'install');
    s.addNode(B.name, B.mac, B.ip, 'os');
  });
  afterEach(() => s.close());

  it('refused kickstarts alternating between two MACs keep both histories bounded', async function () {
    this.timeout(300_000);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: '127.0.66.6' });
    const ask = (mac: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: s.port, path: KICKSTART_PATH, agent, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${mac}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
    try {
      // One at a time, so the two nodes' events alternate: one of them only ever gets odd row ids.
      const total = 2 * EVENTS_PER_NODE + 300;
      for (let i = 0; i < total; i++) {
        const status = await ask(i % 2 === 0 ? A.mac : B.mac);
        expect(status).to.equal(403);
        await new Promise((r) => setImmediate(r)); // let the queued event be written in its own batch
      }
    } finally {
      agent.destroy();
    }
    expect(eventCount(s, A.name)).to.be.at.most(EVENTS_PER_NODE);
    expect(eventCount(s, B.name)).to.be.at.most(EVENTS_PER_NODE);
    const ok = await s.request({ path: KICKSTART_PATH, from: A.ip });
    expect(ok.status).to.equal(200);
  });

  it('direct writes (the CLI) are bounded the same way', () => {
    for (let i = 0; i < 2 * EVENTS_PER_NODE + 100; i++) {
      s.inventory.recordEvent((i % 2 === 0 ? A.name : B.name) as NodeName, 'test', `event ${i}`);
      s.inventory.flushEvents();
    }
    expect(eventCount(s, A.name)).to.be.at.most(EVENTS_PER_NODE);
    expect(eventCount(s, B.name)).to.be.at.most(EVENTS_PER_NODE);
    expect(s.inventory.events(A.name as NodeName, 1)[0]!.message).to.equal(`event ${2 * EVENTS_PER_NODE + 98}`);
  });
});
