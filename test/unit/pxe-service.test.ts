import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TemplateError } from '../../protocol/errors.js';
import { type Ipv4, type NodeName, parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { BootPolicy } from '../../server/core/boot.js';
import { Inventory } from '../../server/inventory/store.js';
import { silentLogger } from '../../server/log.js';
import { PxeService } from '../../server/pxe/service.js';
import { FakeRenderer } from '../helpers/renderer.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('PxeService', () => {
  let inv: Inventory;
  let renderer: FakeRenderer;
  let root: string;
  let pxe: PxeService;
  const uuid = '4c4c4544-0038-3010-8030-b4c04f4a4e31';
  const text = (b: Buffer | null) => b?.toString('utf8') ?? null;
  const pxeEvents = (name: string) =>
    inv
      .events(name as NodeName)
      .filter((e) => e.kind === 'pxe')
      .map((e) => e.message);

  beforeEach(() => {
    const dir = tmpDir();
    root = path.join(dir, 'tftpboot');
    fs.mkdirSync(path.join(root, 'pxelinux.cfg'), { recursive: true });
    inv = new Inventory(path.join(dir, 'inventory.sqlite'));
    renderer = new FakeRenderer();
    const log = silentLogger();
    pxe = new PxeService({ policy: new BootPolicy(inv, log), inventory: inv, renderer, tftpRoot: root, log });
    inv.addNode({ name: parseNodeName('compute-0-0'), mac: parseMac('52:54:00:00:00:01'), ip: parseIpv4('10.18.1.2'), appliance: 'compute', uuid, bootAction: 'install' });
    inv.addNode({ name: parseNodeName('compute-0-1'), mac: parseMac('52:54:00:00:00:02'), ip: parseIpv4('10.18.1.3'), appliance: 'compute', bootAction: 'os' });
  });
  afterEach(() => inv.close());
  after(cleanupTmpDirs);

  describe('01-<mac>', () => {
    it('serves the node its config for its boot action and records the event', () => {
      expect(text(pxe.configFor('01-52-54-00-00-00-01', undefined))).to.equal('MODE install node compute-0-0\n');
      expect(text(pxe.configFor('01-52-54-00-00-00-02', undefined))).to.equal('MODE os node compute-0-1\n');
      expect(pxeEvents('compute-0-0')).to.deep.equal(['served pxelinux.cfg/01-52-54-00-00-00-01 (install)']);
      expect(pxeEvents('compute-0-1')).to.deep.equal(['served pxelinux.cfg/01-52-54-00-00-00-02 (os)']);
    });

    it('follows the boot action as it changes (capture, then os)', () => {
      inv.setBootAction({ names: [parseNodeName('compute-0-0')] }, 'capture');
      expect(text(pxe.configFor('01-52-54-00-00-00-01', undefined))).to.equal('MODE capture node compute-0-0\n');
      inv.setBootAction({ names: [parseNodeName('compute-0-0')] }, 'os');
      expect(text(pxe.configFor('01-52-54-00-00-00-01', undefined))).to.equal('MODE os node compute-0-0\n');
    });

    it('accepts an uppercase MAC name', () => {
      inv.addNode({ name: parseNodeName('compute-0-2'), mac: parseMac('52:54:00:ab:cd:ef'), ip: parseIpv4('10.18.1.4'), appliance: 'compute', bootAction: 'install' });
      expect(text(pxe.configFor('01-52-54-00-AB-CD-EF', undefined))).to.equal('MODE install node compute-0-2\n');
      expect(pxeEvents('compute-0-2')).to.deep.equal(['served pxelinux.cfg/01-52-54-00-ab-cd-ef (install)']);
    });

    it('serves the node even when the TFTP source IP is not its registered IP', () => {
      expect(text(pxe.configFor('01-52-54-00-00-00-01', '10.99.0.7' as Ipv4))).to.equal('MODE install node compute-0-0\n');
    });

    it('answers not found for an unknown MAC when discovery is off, and registers nothing', () => {
      expect(pxe.configFor('01-52-54-00-00-00-99', undefined)).to.equal(null);
      expect(inv.count()).to.equal(2);
      expect(renderer.calls).to.deep.equal([]);
    });

    it('registers an unknown MAC while discovery is active and serves it the install config', () => {
      inv.setDiscovery({ appliance: 'compute', rack: 1, firstIp: parseIpv4('10.18.2.1'), startedAt: new Date().toISOString() });
      expect(text(pxe.configFor('01-52-54-00-00-00-99', undefined))).to.equal('MODE install node compute-1-0\n');
      const node = inv.findByMac(parseMac('52:54:00:00:00:99'));
      expect(node?.name).to.equal('compute-1-0');
      expect(node?.ip).to.equal('10.18.2.1');
      const kinds = inv.events('compute-1-0' as NodeName).map((e) => e.kind);
      expect(kinds).to.include('discover');
      expect(kinds.at(-1)).to.equal('pxe');
      expect(pxeEvents('compute-1-0')).to.deep.equal(['served pxelinux.cfg/01-52-54-00-00-00-99 (install)']);
    });
  });

  describe('<uuid>', () => {
    it('serves the node with that UUID (either case) and answers not found for an unknown UUID', () => {
      expect(text(pxe.configFor(uuid, undefined))).to.equal('MODE install node compute-0-0\n');
      expect(text(pxe.configFor(uuid.toUpperCase(), undefined))).to.equal('MODE install node compute-0-0\n');
      expect(pxe.configFor('00000000-0000-0000-0000-000000000000', undefined)).to.equal(null);
      expect(pxeEvents('compute-0-0')).to.deep.equal([`served pxelinux.cfg/${uuid} (install)`, `served pxelinux.cfg/${uuid} (install)`]);
    });
  });

  describe('<HEXIP>', () => {
    it('serves the node registered with that IP, not found otherwise', () => {
      expect(text(pxe.configFor('0A120103', '10.18.1.3' as Ipv4))).to.equal('MODE os node compute-0-1\n');
      expect(pxeEvents('compute-0-1')).to.deep.equal(['served pxelinux.cfg/0A120103 (os)']);
      expect(pxe.configFor('0A1201FE', undefined)).to.equal(null);
    });

    it('serves a prefix only as a static file the admin provided, never a rendered one', () => {
      expect(pxe.configFor('0A1201', undefined)).to.equal(null);
      fs.writeFileSync(path.join(root, 'pxelinux.cfg', '0A1201'), 'LABEL subnet\n');
      expect(text(pxe.configFor('0A1201', undefined))).to.equal('LABEL subnet\n');
      expect(pxe.configFor('0A12', undefined)).to.equal(null);
      expect(renderer.calls).to.deep.equal([]);
    });
  });

  describe('default', () => {
    it('renders default when no static file exists and discovery is off', () => {
      expect(text(pxe.configFor('default', undefined))).to.equal('MODE default node (none)\n');
    });

    it('renders discover while discovery is active', () => {
      inv.setDiscovery({ appliance: 'compute', rack: 0, firstIp: parseIpv4('10.18.1.100'), startedAt: new Date().toISOString() });
      expect(text(pxe.configFor('default', undefined))).to.equal('MODE discover node (none)\n');
    });

    it('prefers a static pxelinux.cfg/default the admin put in the root', () => {
      fs.writeFileSync(path.join(root, 'pxelinux.cfg', 'default'), 'DEFAULT local\n');
      expect(text(pxe.configFor('default', undefined))).to.equal('DEFAULT local\n');
      expect(renderer.calls).to.deep.equal([]);
    });

    it('ignores a static default that is a symlink out of the root or a directory', () => {
      const outside = path.join(path.dirname(root), 'secret');
      fs.writeFileSync(outside, 'SECRET\n');
      fs.symlinkSync(outside, path.join(root, 'pxelinux.cfg', 'default'));
      expect(text(pxe.configFor('default', undefined))).to.equal('MODE default node (none)\n');
      fs.mkdirSync(path.join(root, 'pxelinux.cfg', '0A'));
      expect(pxe.configFor('0A', undefined)).to.equal(null);
    });
  });

  describe('render failures', () => {
    it('answers not found, and records the failure, when the node template fails', () => {
      renderer.failFor.add('compute-0-0');
      renderer.failWith = () => new TemplateError('templates/pxelinux.hbs', 3, 'missing attribute "kernel"');
      expect(pxe.configFor('01-52-54-00-00-00-01', undefined)).to.equal(null);
      expect(pxeEvents('compute-0-0')).to.deep.equal(['failed to render pxelinux.cfg/01-52-54-00-00-00-01 (install): templates/pxelinux.hbs:3: missing attribute "kernel"']);
    });

    it('answers not found when the generated default fails (e.g. a missing profile)', () => {
      renderer.failFor.add('(none)');
      renderer.failWith = () => new NotFoundError('no profile default');
      expect(pxe.configFor('default', undefined)).to.equal(null);
    });

    it('lets unexpected errors through', () => {
      renderer.failFor.add('compute-0-0');
      renderer.failWith = () => new TypeError('bug');
      expect(() => pxe.configFor('01-52-54-00-00-00-01', undefined)).to.throw(TypeError, 'bug');
    });
  });

  it('answers not found for junk names without asking the renderer', () => {
    for (const junk of ['', 'foo', '0a120102', '02-52-54-00-00-00-01', '../default', 'x/default', 'DEFAULT']) {
      expect(pxe.configFor(junk, undefined), junk).to.equal(null);
    }
    expect(renderer.calls).to.deep.equal([]);
  });
});
