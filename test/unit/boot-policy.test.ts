import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { type Ipv4, type NodeName, parseIpv4, parseMac, parseNodeName } from '../../protocol/node.js';
import { type Assignment, BootPolicy } from '../../server/core/boot.js';
import { Inventory } from '../../server/inventory/store.js';
import { silentLogger } from '../../server/log.js';
import { PxeService } from '../../server/pxe/service.js';
import { FakeRenderer } from '../helpers/renderer.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const A = parseNodeName('compute-0-0');
const B = parseNodeName('compute-0-1');
const IP_A = parseIpv4('10.18.1.2');
const IP_B = parseIpv4('10.18.1.3');

function code(a: Assignment): string {
  return a.kind === 'refused' ? a.code : 'serve';
}

describe('BootPolicy: the assignment and install sessions', () => {
  let inv: Inventory;
  let clock: Date;
  let policy: BootPolicy;
  let dir: string;
  const token = (n: NodeName) => inv.session(n)?.token ?? '';

  beforeEach(() => {
    dir = tmpDir();
    clock = new Date('2030-01-01T00:00:00.000Z');
    inv = new Inventory(path.join(dir, 'inventory.sqlite'), { now: () => clock, sessionTtlSeconds: 3600 });
    policy = new BootPolicy(inv, silentLogger(), { now: () => clock, imageFor: () => ({ name: 'centos', method: 'torrent' }) });
    inv.addNode({ name: A, mac: parseMac('52:54:00:00:00:01'), ip: IP_A, appliance: 'compute' });
    inv.addNode({ name: B, mac: parseMac('52:54:00:00:00:02'), ip: IP_B, appliance: 'compute' });
  });
  afterEach(() => inv.close());
  after(cleanupTmpDirs);

  it('opens a session when the action becomes install or capture, keeps it while live, ends it on os', () => {
    expect(inv.session(A)).to.equal(undefined);
    inv.setBootAction({ names: [A] }, 'install');
    const s = inv.session(A)!;
    expect(s.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(s).to.include({ action: 'install', mac: '52:54:00:00:00:01', ip: IP_A, expiresAt: '2030-01-01T01:00:00.000Z' });
    inv.setBootAction({ names: [A] }, 'install');
    expect(token(A)).to.equal(s.token);
    inv.setBootAction({ names: [A] }, 'capture');
    expect(token(A)).to.not.equal(s.token);
    inv.setBootAction({ names: [A] }, 'os');
    expect(inv.session(A)).to.equal(undefined);
    expect(inv.sessionByToken(s.token)).to.equal(undefined);
    const kinds = inv
      .events(A)
      .filter((e) => e.kind === 'session')
      .map((e) => e.message);
    expect(kinds).to.have.length(3);
    expect(kinds[1]).to.match(/opened for capture/);
    expect(kinds[2]).to.match(/ended \(boot action os/);
    expect(kinds.join('\n')).to.not.contain(s.token);
  });

  it("puts the token in a boot config only for the node's registered IP", () => {
    inv.setBootAction({ names: [A] }, 'install');
    const own = policy.decide({ purpose: 'boot', mac: parseMac('52:54:00:00:00:01'), source: IP_A, via: 'tftp' });
    expect(own.kind === 'serve' && own.boot).to.deep.equal({ mode: 'install', session: { token: token(A), expiresAt: '2030-01-01T01:00:00.000Z' } });
    for (const source of [IP_B, parseIpv4('10.18.1.99'), undefined]) {
      const other = policy.decide({ purpose: 'boot', mac: parseMac('52:54:00:00:00:01'), source, via: 'tftp' });
      expect(other.kind === 'serve' && other.boot, String(source)).to.deep.equal({ mode: 'install', session: null });
    }
    clock = new Date('2030-01-01T01:00:01.000Z');
    const late = policy.decide({ purpose: 'boot', mac: parseMac('52:54:00:00:00:01'), source: IP_A, via: 'tftp' });
    expect(late.kind === 'serve' && late.boot.session).to.equal(null);
  });

  it('the TFTP transport renders exactly that: the token reaches the renderer only from the registered IP', () => {
    const renderer = new FakeRenderer();
    fs.mkdirSync(path.join(dir, 'tftpboot'), { recursive: true });
    const pxe = new PxeService({ policy, inventory: inv, renderer, tftpRoot: path.join(dir, 'tftpboot'), log: silentLogger() });
    inv.setBootAction({ names: [A] }, 'install');
    expect(pxe.configFor('01-52-54-00-00-00-01', IP_B)!.toString()).to.equal('MODE install node compute-0-0\n');
    expect(pxe.configFor('01-52-54-00-00-00-01', IP_A)!.toString()).to.equal(`MODE install node compute-0-0 kickswarm.session=${token(A)}\n`);
    expect(pxe.configFor('0A120102', IP_A)!.toString()).to.contain(token(A));
  });

  it("kickstart: needs the live token from the node's IP; refusals carry stable codes", () => {
    inv.setBootAction({ names: [A, B] }, 'install');
    const ks = (source: Ipv4 | undefined, session?: string) => code(policy.decide({ purpose: 'kickstart', source, session, via: 'kickstart' }));
    expect(ks(IP_A, token(A))).to.equal('serve');
    expect(ks(IP_A)).to.equal('session_required');
    expect(ks(IP_A, token(B))).to.equal('ip_mismatch');
    expect(ks(IP_A, 'x'.repeat(43))).to.equal('session_invalid');
    expect(ks(IP_A, 'short')).to.equal('session_invalid');
    expect(ks(undefined, token(A))).to.equal('no_source');
    const wrongMac = policy.decide({ purpose: 'kickstart', source: IP_A, mac: parseMac('52:54:00:00:00:02'), session: token(A), via: 'kickstart' });
    expect(code(wrongMac)).to.equal('session_invalid');
    const served = policy.decide({ purpose: 'kickstart', source: IP_A, session: token(A), via: 'kickstart' });
    expect(served.kind === 'serve' && served.image).to.deep.equal({ name: 'centos', method: 'torrent' });
    clock = new Date('2030-01-01T02:00:00.000Z');
    expect(ks(IP_A, token(A))).to.equal('session_expired');
  });

  it('a session outlives no change of address or action', () => {
    inv.setBootAction({ names: [A] }, 'install');
    const t = token(A);
    inv.setBootAction({ names: [A] }, 'capture');
    expect(code(policy.decide({ purpose: 'kickstart', source: IP_A, session: t, via: 'kickstart' }))).to.equal('session_invalid');
  });

  it('images: only the one the assignment names; a capturing node may only ask whether a name is taken', () => {
    inv.setBootAction({ names: [A] }, 'install');
    inv.setBootAction({ names: [B] }, 'capture');
    const img = (source: Ipv4, session: string, image: string, headOnly = false) => code(policy.decide({ purpose: 'image', source, session, image, headOnly, via: 'image' }));
    expect(img(IP_A, token(A), 'centos')).to.equal('serve');
    expect(img(IP_A, token(A), 'other')).to.equal('wrong_image');
    expect(img(IP_B, token(B), 'centos')).to.equal('wrong_image');
    expect(img(IP_B, token(B), 'centos', true)).to.equal('serve');
  });

  it('with sessions off, anaconda routes fall back to the source IP; capture and secrets still need a token', () => {
    const open = new BootPolicy(inv, silentLogger(), { requireSessions: false, now: () => clock });
    inv.setBootAction({ names: [A] }, 'install');
    inv.setBootAction({ names: [B] }, 'capture');
    expect(code(open.decide({ purpose: 'kickstart', source: IP_A, via: 'kickstart' }))).to.equal('serve');
    expect(code(open.decide({ purpose: 'report', source: IP_A, via: 'report' }))).to.equal('serve');
    expect(code(open.decide({ purpose: 'kickstart', source: parseIpv4('10.18.1.99'), via: 'kickstart' }))).to.equal('unknown_node');
    expect(code(open.decide({ purpose: 'secrets', source: IP_A, via: 'secrets' }))).to.equal('session_required');
    expect(code(open.decide({ purpose: 'capture', source: IP_B, via: 'capture' }))).to.equal('session_required');
    expect(code(open.decide({ purpose: 'capture', source: IP_B, session: token(B), via: 'capture' }))).to.equal('serve');
  });

  it('one-time uses: the upload and the secrets are claimed once; a spent session is renewed by setting the action again', () => {
    inv.setBootAction({ names: [A] }, 'install');
    const t = token(A);
    expect(inv.claimSession(t, 'secrets')).to.equal(true);
    expect(inv.claimSession(t, 'secrets')).to.equal(false);
    expect(code(policy.decide({ purpose: 'secrets', source: IP_A, session: t, via: 'secrets' }))).to.equal('session_spent');
    expect(code(policy.decide({ purpose: 'kickstart', source: IP_A, session: t, via: 'kickstart' }))).to.equal('serve');
    inv.setBootAction({ names: [A] }, 'install');
    expect(token(A)).to.not.equal(t);
    expect(code(policy.decide({ purpose: 'secrets', source: IP_A, session: token(A), via: 'secrets' }))).to.equal('serve');
  });
});
