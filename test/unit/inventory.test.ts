import { expect } from 'chai';
import path from 'node:path';
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
