import { expect } from 'chai';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { silentLogger } from '../../server/log.js';
import { SwarmTracker, type SwarmTrackerOptions, trackerRoutes } from '../../server/swarm/tracker.js';

const INFO_HASH = crypto.randomBytes(20);
const SEEDER = { ip: '127.0.0.1', port: 6881, peerId: Buffer.from('-KSFE01-seederseeder', 'latin1').toString('hex') };

interface Answer {
  failure?: string;
  /** Compact peers as ip:port. */
  peers: string[];
}

/** The failure reason or the compact IPv4 peer list of a bencoded announce answer. */
function parseAnswer(body: Buffer): Answer {
  const text = body.toString('latin1');
  const failure = /14:failure reason(\d+):/.exec(text);
  if (failure) return { failure: text.substr(failure.index + failure[0].length, Number(failure[1])), peers: [] };
  const m = /5:peers(\d+):/.exec(text);
  if (!m) throw new Error(`no peers in ${JSON.stringify(text)}`);
  const start = m.index + m[0].length;
  const raw = body.subarray(start, start + Number(m[1]));
  const peers: string[] = [];
  for (let i = 0; i + 6 <= raw.length; i += 6) peers.push(`${raw[i]}.${raw[i + 1]}.${raw[i + 2]}.${raw[i + 3]}:${raw.readUInt16BE(i + 4)}`);
  return { peers };
}

function announce(port: number, from: string, peerPort: number, opts: { peerId?: string; numwant?: number; event?: string } = {}): Promise<Answer> {
  const peerId = opts.peerId ?? `-XX0001-${crypto.randomBytes(6).toString('hex')}`;
  const q = [
    `info_hash=${escape(INFO_HASH.toString('latin1'))}`,
    `peer_id=${escape(peerId)}`,
    `port=${peerPort}`,
    'left=100',
    'compact=1',
    `numwant=${opts.numwant ?? 50}`,
    `event=${opts.event ?? 'started'}`,
  ].join('&');
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/announce?${q}`, localAddress: from, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(parseAnswer(Buffer.concat(chunks)));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
  });
}

/** The i-th of many distinct loopback addresses, none of them a registered node. */
const stranger = (i: number) => `127.8.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const NODES = ['127.0.5.1', '127.0.5.2', '127.0.5.3'];

describe('tracker under hostile announces', () => {
  let server: http.Server;
  let tracker: SwarmTracker;
  let port: number;

  async function start(opts: Partial<SwarmTrackerOptions>): Promise<void> {
    tracker = new SwarmTracker({ log: silentLogger(), ...opts });
    await tracker.start();
    tracker.allow(INFO_HASH.toString('hex'));
    tracker.pinSeeder(SEEDER);
    const app = new Koa();
    app.silent = true;
    app.use(trackerRoutes(tracker).routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    port = (server.address() as AddressInfo).port;
  }
  afterEach(async () => {
    await tracker.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('refuses 1,100 announces from unregistered addresses; nodes still get the seeder first', async function () {
    this.timeout(120_000);
    await start({ mayAnnounce: (ip) => ip === '127.0.0.1' || NODES.includes(ip) });
    const seederSelf = await announce(port, '127.0.0.1', SEEDER.port, { peerId: Buffer.from(SEEDER.peerId, 'hex').toString('latin1') });
    expect(seederSelf.peers, 'the seeder is not handed itself').to.not.include(`${SEEDER.ip}:${SEEDER.port}`);
    const refusals = new Map<string, number>();
    for (let i = 0; i < 1100; i++) {
      const a = await announce(port, stranger(i), 10_000 + i);
      refusals.set(a.failure ?? 'admitted', (refusals.get(a.failure ?? 'admitted') ?? 0) + 1);
    }
    expect(Object.fromEntries(refusals)).to.deep.equal({ 'this address may not join the swarm': 1100 });
    const node = await announce(port, NODES[0]!, 7000);
    expect(node.failure).to.equal(undefined);
    expect(node.peers[0]).to.equal(`${SEEDER.ip}:${SEEDER.port}`);
    expect(node.peers.every((p) => !p.startsWith('127.8.'))).to.equal(true);
    expect(tracker.peers(INFO_HASH.toString('hex')).leechers).to.equal(2);
  });

  it('caps peers per address, so one node cannot flood the swarm', async () => {
    await start({ mayAnnounce: (ip) => NODES.includes(ip), maxPeersPerAddress: 4 });
    const answers = [];
    for (let p = 0; p < 20; p++) answers.push(await announce(port, NODES[1]!, 20_000 + p));
    expect(answers.filter((a) => !a.failure)).to.have.length(4);
    expect(answers.slice(4).map((a) => a.failure)).to.deep.equal(Array(16).fill('too many peers from this address'));
    // A re-announce of an admitted peer is fine; another node gets in.
    expect((await announce(port, NODES[1]!, 20_000, { event: 'update' })).failure).to.equal(undefined);
    const other = await announce(port, NODES[2]!, 7000, { numwant: 1 });
    expect(other.peers).to.deep.equal([`${SEEDER.ip}:${SEEDER.port}`]);
  });

  it('open to any address: 1,100 announces from many addresses never evict anyone, the swarm stays bounded, the seeder stays first', async function () {
    this.timeout(120_000);
    await start({ maxPeersPerSwarm: 1000 });
    const early = await announce(port, NODES[0]!, 7000);
    expect(early.peers[0]).to.equal(`${SEEDER.ip}:${SEEDER.port}`);
    let full = 0;
    for (let i = 0; i < 1100; i++) if ((await announce(port, stranger(i), 10_000 + i)).failure === 'swarm is full') full++;
    expect(full).to.equal(101);
    const counts = tracker.peers(INFO_HASH.toString('hex'));
    expect(counts.seeders + counts.leechers).to.equal(1000);
    // The early peer was not evicted: its update is taken, and it is handed the seeder first.
    const again = await announce(port, NODES[0]!, 7000, { event: 'update' });
    expect(again.failure).to.equal(undefined);
    expect(again.peers[0]).to.equal(`${SEEDER.ip}:${SEEDER.port}`);
    expect(again.peers).to.have.length(50);
  });
});

describe('the seeder binds where told', () => {
  it('listens for peers on the given address only', async () => {
    const { SwarmSeeder } = await import('../../server/swarm/seeder.js');
    const net = await import('node:net');
    const seeder = new SwarmSeeder({ log: silentLogger(), host: '127.0.0.4' });
    try {
      const { port: peerPort } = await seeder.start();
      const connect = (host: string) =>
        new Promise<string>((resolve) => {
          const s = net.connect({ host, port: peerPort }, () => {
            s.destroy();
            resolve('connected');
          });
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        });
      expect(await connect('127.0.0.4')).to.equal('connected');
      expect(await connect('127.0.0.1')).to.equal('ECONNREFUSED');
    } finally {
      await seeder.close();
    }
  });
});
