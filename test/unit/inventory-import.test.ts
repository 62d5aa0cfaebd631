import { expect } from 'chai';
import path from 'node:path';
import { parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { ImportProblemsError, formatProblem } from '../../server/inventory/bulk.js';
import { Inventory } from '../../server/inventory/store.js';
import { readCsv, readYaml, writeNodes } from '../../server/cli/node-file.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

function problemsOf(fn: () => unknown, file = 'nodes.csv'): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ImportProblemsError) return e.problems.map((p) => formatProblem(file, p));
    throw e;
  }
  throw new Error('expected problems');
}

const csv = (...lines: string[]) => readCsv(lines.join('\n') + '\n');

describe('node import: rows checked whole, applied in one transaction', () => {
  let inv: Inventory;
  beforeEach(() => {
    inv = new Inventory(path.join(tmpDir(), 'inventory.sqlite'));
  });
  afterEach(() => inv.close());
  after(cleanupTmpDirs);

  it('adds nodes with defaults and attributes, then leaves them unchanged on the same file', () => {
    const rows = csv('name,mac,ip,rack,rank,attr.ipmi.host', 'compute-0-0,52:54:00:00:00:01,10.1.1.10,0,0,10.2.0.10', 'compute-0-1,52-54-00-00-00-02,10.1.1.11,0,1,');
    const plan = inv.importNodes(rows);
    expect(plan.add.map((n) => n.name)).to.deep.equal(['compute-0-0', 'compute-0-1']);
    const n1 = inv.requireNode('compute-0-1');
    expect([n1.mac, n1.appliance, n1.rack, n1.rank, n1.attrs, n1.bootAction]).to.deep.equal(['52:54:00:00:00:02', 'compute', 0, 1, {}, 'os']);
    expect(inv.requireNode('compute-0-0').attrs).to.deep.equal({ 'ipmi.host': '10.2.0.10' });
    expect(inv.events(parseNodeName('compute-0-0'))[0]!.message).to.match(/^added by import/);
    const again = inv.importNodes(rows);
    expect([again.add.length, again.update.length, again.unchanged]).to.deep.equal([0, 0, 2]);
  });

  it('reports every problem with row, line and column, and writes nothing', () => {
    inv.addNode({ name: parseNodeName('login-0-0'), mac: parseMac('52:54:00:00:99:01'), ip: parseIpv4('10.1.9.1'), appliance: 'login' });
    const rows = csv(
      'name,mac,ip,appliance,rack',
      'compute-0-0,52:54:00:00:00:01,10.1.1.10,compute,0',
      'compute-0-1,52:54:00:00:00:zz,10.1.1.11,compute,x',
      'Bad_Name,52:54:00:00:00:03,10.1.1.12,compute,0',
      'compute-0-3,52:54:00:00:00:04,10.1.9.1,compute,0',
      'compute-0-0,52:54:00:00:00:05,10.1.1.15,compute,0',
      'compute-0-5,52:54:00:00:00:01,10.1.1.16,compute,0',
      'compute-0-6,52:54:00:00:00:07,10.1.1.17,,0',
    );
    const lines = problemsOf(() => inv.importNodes(rows));
    expect(lines).to.deep.equal([
      'nodes.csv:2: row 1, column mac: MAC 52:54:00:00:00:01 also belongs to node compute-0-5 (row 6)',
      'nodes.csv:3: row 2, column mac: malformed MAC address "52:54:00:00:00:zz" (want aa:bb:cc:dd:ee:ff)',
      'nodes.csv:3: row 2, column rack: rack must be a whole number, not "x"',
      'nodes.csv:4: row 3, column name: malformed node name "Bad_Name" (lowercase letters, digits and dashes; starts with a letter or digit; at most 63)',
      'nodes.csv:5: row 4, column ip: IP 10.1.9.1 also belongs to node login-0-0 (in the inventory)',
      'nodes.csv:6: row 5, column name: node compute-0-0 is also on row 1',
      'nodes.csv:7: row 6, column mac: MAC 52:54:00:00:00:01 also belongs to node compute-0-0 (row 1)',
      'nodes.csv:8: row 7, column appliance: appliance cannot be empty',
    ]);
    expect(inv.count(), 'nothing was written').to.equal(1);
  });

  it('updates only the columns a file has; an empty cell clears; nodes may swap IPs', () => {
    inv.importNodes(csv('name,mac,ip,rack,rank,attr.a,attr.b', 'c-0,52:54:00:00:00:01,10.0.0.1,0,0,1,2', 'c-1,52:54:00:00:00:02,10.0.0.2,0,1,3,4'));
    const plan = inv.importNodes(csv('name,ip,rank,attr.a', 'c-0,10.0.0.2,,', 'c-1,10.0.0.1,1,3'));
    expect(plan.update.map((u) => u.after.name)).to.deep.equal(['c-0', 'c-1']);
    const [c0, c1] = [inv.requireNode('c-0'), inv.requireNode('c-1')];
    expect([c0.ip, c0.mac, c0.rack, c0.rank, c0.attrs]).to.deep.equal(['10.0.0.2', '52:54:00:00:00:01', 0, null, { b: '2' }]);
    expect([c1.ip, c1.rank, c1.attrs]).to.deep.equal(['10.0.0.1', 1, { a: '3', b: '4' }]);
    expect(inv.events(parseNodeName('c-0')).at(-1)!.message).to.equal('updated by import: ip 10.0.0.1 -> 10.0.0.2; rank 0 -> -; attributes a');
  });

  it('a new node needs mac and ip; header problems are reported before any row', () => {
    expect(problemsOf(() => inv.importNodes(csv('name,ip', 'c-0,10.0.0.1')))).to.deep.equal(['nodes.csv:2: row 1, column mac: a new node needs a MAC address']);
    expect(problemsOf(() => csv('name,mac,colour,attr.9x', 'c-0,52:54:00:00:00:01,red,1'))).to.deep.equal([
      'nodes.csv:1: column colour: unknown column (want name, mac, ip, appliance, rack, rank, uuid or attr.KEY)',
      'nodes.csv:1: column attr.9x: malformed attribute key "9x" (identifier, dots allowed)',
    ]);
    expect(problemsOf(() => csv('name,mac', 'c-0,"52:54'))[0]).to.match(/^nodes\.csv(:\d+)?: not valid CSV: /);
  });

  it('dry run checks and plans but writes nothing', () => {
    const plan = inv.importNodes(csv('name,mac,ip', 'c-0,52:54:00:00:00:01,10.0.0.1'), { dryRun: true });
    expect(plan.add).to.have.length(1);
    expect(inv.count()).to.equal(0);
  });

  it('YAML reads every value as a string and reports bad keys with their lines', () => {
    const rows = readYaml(['nodes:', '  - name: c-0', '    mac: 52:54:00:00:00:01', '    ip: 10.0.0.1', '    rack: 3', '    attributes:', '      pin: 007', '      flag: true'].join('\n'));
    inv.importNodes(rows);
    expect(inv.requireNode('c-0').attrs).to.deep.equal({ pin: '007', flag: 'true' });
    expect(inv.requireNode('c-0').rack).to.equal(3);
    expect(problemsOf(() => readYaml(['nodes:', '  - name: c-1', '    colour: red', '  - just a string'].join('\n')), 'nodes.yaml')).to.deep.equal([
      'nodes.yaml:3: row 1, column colour: unknown key (want name, mac, ip, appliance, rack, rank, uuid or attributes)',
      'nodes.yaml:4: row 2: each node is a mapping (name: ..., mac: ..., ip: ...)',
    ]);
  });

  it('export writes what import reads: CSV and YAML round trips are exact', () => {
    inv.importNodes(
      csv(
        'name,mac,ip,appliance,rack,rank,uuid,attr.x',
        'a-0,52:54:00:00:00:01,10.0.0.1,login,,,4c4c4544-0038-3010-8030-b4c04f4a4e31,"v,with ""quotes"""',
        'c-0,52:54:00:00:00:02,10.0.0.2,compute,0,0,,',
      ),
    );
    const nodes = inv.listNodes();
    for (const format of ['csv', 'yaml'] as const) {
      const text = writeNodes(nodes, format);
      const other = new Inventory(path.join(tmpDir(), 'inventory.sqlite'));
      try {
        other.importNodes(format === 'csv' ? readCsv(text) : readYaml(text));
        expect(writeNodes(other.listNodes(), format), format).to.equal(text);
        expect(other.requireNode('a-0').attrs.x).to.equal('v,with "quotes"');
      } finally {
        other.close();
      }
      const same = inv.importNodes(format === 'csv' ? readCsv(text) : readYaml(text));
      expect([same.add.length, same.update.length, same.unchanged], format).to.deep.equal([0, 0, 2]);
    }
  });
});
