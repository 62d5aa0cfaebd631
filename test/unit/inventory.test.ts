import { expect } from 'chai';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { ConflictError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { type Ipv4, type Mac, type NodeName, parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { Inventory } from '../../server/inventory/store.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const node = (name: string, mac: string, ip: string, extra: Record<string, unknown> = {}) => ({
  name: parseNodeName(name),
  mac: parseMac(mac),
  ip: parseIpv4(ip),
  appliance: 'compute',
  ...extra,
});

describe('inventory store', () => {
  let file: string;
  let inv: Inventory;
  beforeEach(() => {
    file = path.join(tmpDir(), 'inventory.sqlite');
    inv = new Inventory(file);
  });
  afterEach(() => inv.close());
  after(cleanupTmpDirs);

  it('adds, finds by name, MAC, IP and UUID, lists in rack/rank order', () => {
    inv.addNode(node('compute-0-1', '52:54:00:00:00:02', '10.1.1.2', { rack: 0, rank: 1 }));
    inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.1', { rack: 0, rank: 0, uuid: '4c4c4544-0038-3010-8030-b4c04f4a4e31' }));
    expect(inv.getNode('compute-0-0')?.mac).to.equal('52:54:00:00:00:01');
    expect(inv.findByMac('52:54:00:00:00:02' as Mac)?.name).to.equal('compute-0-1');
    expect(inv.findByIp('10.1.1.1' as Ipv4)?.name).to.equal('compute-0-0');
    expect(inv.findByUuid('4c4c4544-0038-3010-8030-b4c04f4a4e31')?.name).to.equal('compute-0-0');
    expect(inv.listNodes().map((n) => n.name)).to.deep.equal(['compute-0-0', 'compute-0-1']);
    expect(inv.getNode('compute-0-0')?.bootAction).to.equal('os');
  });

  it('refuses duplicates naming the node that holds the name, MAC or IP, and changes nothing', () => {
    inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.1'));
    expect(() => inv.addNode(node('compute-0-0', '52:54:00:00:00:09', '10.1.1.9'))).to.throw(ConflictError, /node compute-0-0 already exists/);
    expect(() => inv.addNode(node('compute-0-9', '52:54:00:00:00:01', '10.1.1.9'))).to.throw(ConflictError, /MAC 52:54:00:00:00:01 already belongs to node compute-0-0/);
    expect(() => inv.addNode(node('compute-0-9', '52:54:00:00:00:09', '10.1.1.1'))).to.throw(ConflictError, /IP 10.1.1.1 already belongs to node compute-0-0/);
    expect(inv.count()).to.equal(1);
  });

  it('sets boot actions by names, appliance and all, recording changes only', () => {
    inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.1'));
    inv.addNode(node('login-0-0', '52:54:00:00:00:03', '10.1.1.3', { appliance: 'login' }));
    expect(inv.setBootAction({ appliance: 'compute' }, 'install').map((n) => n.bootAction)).to.deep.equal(['install']);
    expect(inv.getNode('login-0-0')?.bootAction).to.equal('os');
    inv.setBootAction({ all: true }, 'install');
    expect(inv.listNodes().every((n) => n.bootAction === 'install')).to.equal(true);
    const boots = inv.events('compute-0-0' as NodeName).filter((e) => e.kind === 'boot');
    expect(boots).to.have.length(1);
    expect(() => inv.setBootAction({ names: ['compute-0-0' as NodeName, 'nope' as NodeName] }, 'os')).to.throw(NotFoundError, /nope/);
    expect(inv.getNode('compute-0-0')?.bootAction, 'all or nothing').to.equal('install');
  });

  it('registers discovered MACs in arrival order with the next rank and free IP', () => {
    inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.10', { rack: 0, rank: 0 }));
    expect(() => inv.registerDiscovered(parseMac('52:54:00:00:00:05'), 'tftp')).to.throw(InvalidInputError, /not active/);
    inv.setDiscovery({ appliance: 'compute', rack: 0, firstIp: parseIpv4('10.1.1.10'), startedAt: new Date().toISOString() });
    const a = inv.registerDiscovered(parseMac('52:54:00:00:00:05'), 'tftp');
    const b = inv.registerDiscovered(parseMac('52:54:00:00:00:06'), 'kickstart');
    expect([a.name, a.ip, a.bootAction]).to.deep.equal(['compute-0-1', '10.1.1.11', 'install']);
    expect([b.name, b.ip]).to.deep.equal(['compute-0-2', '10.1.1.12']);
    expect(inv.registerDiscovered(parseMac('52:54:00:00:00:05'), 'tftp').name, 'a retry is the same node').to.equal('compute-0-1');
    expect(inv.eventsSince(0, 'discover').map((e) => e.node)).to.deep.equal(['compute-0-1', 'compute-0-2']);
  });

  it('is shared live between two connections (CLI and server): no sync step', () => {
    const other = new Inventory(file);
    try {
      inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.1'));
      expect(other.getNode('compute-0-0')?.ip).to.equal('10.1.1.1');
      other.setBootAction({ all: true }, 'install');
      expect(inv.getNode('compute-0-0')?.bootAction).to.equal('install');
    } finally {
      other.close();
    }
  });

  it('removes a node with its events; unknown names are NotFound', () => {
    inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.1'));
    inv.removeNode('compute-0-0' as NodeName);
    expect(inv.getNode('compute-0-0')).to.equal(undefined);
    expect(inv.events('compute-0-0' as NodeName)).to.deep.equal([]);
    expect(() => inv.removeNode('compute-0-0' as NodeName)).to.throw(NotFoundError);
  });

  it('merges and deletes attributes', () => {
    inv.addNode(node('compute-0-0', '52:54:00:00:00:01', '10.1.1.1', { attrs: { a: '1', b: '2' } }));
    expect(inv.updateAttrs('compute-0-0' as NodeName, { b: null, c: '3' }).attrs).to.deep.equal({ a: '1', c: '3' });
  });

  it('close is idempotent', () => {
    inv.close();
    inv.close();
  });
});

describe('inventory events, queued (the server)', () => {
  const turn = () => new Promise<void>((r) => setImmediate(r));
  let file: string;
  let inv: Inventory;
  let other: Database.Database;
  let logs: Record<string, unknown>[];
  let clock: Date;
  const a = 'compute-0-0' as NodeName;
  const b = 'compute-0-1' as NodeName;
  /** What another process sees: a second connection to the same file. */
  const seenElsewhere = (kind: string) => other.prepare('SELECT node, message FROM events WHERE kind = ? ORDER BY id').all(kind) as { node: string; message: string }[];
  beforeEach(() => {
    file = path.join(tmpDir(), 'inventory.sqlite');
    logs = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
    clock = new Date('2025-01-01T00:00:00.000Z');
    inv = new Inventory(file, { queueEvents: true, log, now: () => clock });
    inv.addNode(node(a, '52:54:00:00:00:01', '10.1.1.1'));
    inv.addNode(node(b, '52:54:00:00:00:02', '10.1.1.2'));
    other = new Database(file);
  });
  afterEach(() => {
    other.close();
    inv.close();
  });
  after(cleanupTmpDirs);

  it('writes the events of one turn in one transaction when the turn ends, in order and with the time they were recorded', async () => {
    other.pragma('wal_checkpoint(TRUNCATE)');
    for (let i = 0; i < 100; i++) inv.recordEvent(i % 2 ? b : a, 'kickstart', `served ${i}`, { i });
    clock = new Date('2025-01-01T00:00:01.000Z');
    expect(seenElsewhere('kickstart'), 'nothing written during the turn').to.deep.equal([]);
    await turn();
    const rows = seenElsewhere('kickstart');
    expect(rows.map((r) => r.message)).to.deep.equal(Array.from({ length: 100 }, (_, i) => `served ${i}`));
    expect(rows[1]).to.deep.equal({ node: b, message: 'served 1' });
    // One commit appends a handful of WAL frames; 100 commits (the direct mode) append about 300.
    const [wal] = other.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    expect(wal!.log).to.be.below(30);
    const last = inv.events(a, 1)[0]!;
    expect(last.data).to.deep.equal({ i: 98 });
    expect(last.at).to.equal('2025-01-01T00:00:00.000Z');
  });

  it('reads in this process see queued events at once', () => {
    const before = inv.lastEventId();
    inv.recordEvent(a, 'kickstart', 'served');
    expect(inv.events(a).map((e) => e.message)).to.include('served');
    expect(inv.eventsSince(before).map((e) => e.message)).to.deep.equal(['served']);
    expect(inv.lastEventId()).to.equal(before + 1);
  });

  it('keeps call order with events that writes of the inventory add', () => {
    inv.recordEvent(a, 'kickstart', 'served');
    inv.setBootAction({ names: [a] }, 'install');
    expect(inv.events(a).map((e) => e.kind)).to.deep.equal(['inventory', 'kickstart', 'boot', 'session']);
  });

  it('close() writes what is queued: nothing is lost on an orderly shutdown', () => {
    inv.recordEvent(a, 'install', 'install state writing');
    inv.close();
    expect(seenElsewhere('install')).to.deep.equal([{ node: a, message: 'install state writing' }]);
  });

  it('drops an event recorded after close() with a warning, without throwing', async () => {
    inv.close();
    inv.recordEvent(a, 'kickstart', 'too late');
    await turn();
    expect(logs.some((l) => l.msg === 'node events dropped: recorded after the inventory was closed' && l.events === 1)).to.equal(true);
  });

  it('drops, with a warning, only the events of a node removed meanwhile by another process', async () => {
    inv.recordEvent(a, 'pxe', 'served to a');
    inv.recordEvent(b, 'pxe', 'served to b');
    other.pragma('foreign_keys = ON');
    other.prepare('DELETE FROM nodes WHERE name = ?').run(a);
    await turn();
    expect(seenElsewhere('pxe')).to.deep.equal([{ node: b, message: 'served to b' }]);
    expect(logs.some((l) => l.msg === 'node event dropped: node no longer exists' && l.node === a)).to.equal(true);
    inv.recordEvent(b, 'pxe', 'and later');
    await turn();
    expect(seenElsewhere('pxe')).to.have.length(2);
  });

  it('without queueEvents (the CLI) each event is written before recordEvent returns, and errors are thrown', () => {
    const direct = new Inventory(file);
    try {
      direct.recordEvent(a, 'reinstall', 'reinstall requested');
      expect(seenElsewhere('reinstall')).to.have.length(1);
      expect(() => direct.recordEvent('nope' as NodeName, 'reinstall', 'x')).to.throw(/FOREIGN KEY/);
    } finally {
      direct.close();
    }
  });
});
