/**
 * `GET /install/sbin/boot.ipxe?mac=M` on a real HTTP server with the shipped
 * iPXE templates: the same assignment as PXELINUX, the source IP checked as
 * kickstart.cgi checks it, the token only to the node's registered IP,
 * discovery for unknown MACs, and every refusal with its status.
 */
import { expect } from 'chai';
import type { Ipv4, NodeName } from '../../protocol/node.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { BOOT_IPXE_PATH, ipxeRoute } from '../../server/http/routes/ipxe.js';
import { loadRenderSet, type RenderSet } from '../../server/render/renderset.js';
import { type TestServer, startTestServer } from '../helpers/http.js';
import { sampleEnv } from '../fixtures/render/sample.js';

const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const env = sampleEnv({ frontendUrl: 'http://10.9.9.9:8080' });

function pxeEvents(s: TestServer, name: string): { status: unknown; message: string }[] {
  return s.inventory
    .events(name as NodeName, 100)
    .filter((e) => e.kind === 'pxe')
    .map((e) => ({ status: e.data?.status, message: e.message }));
}

describe('http: boot.ipxe', () => {
  let s: TestServer;
  let set: RenderSet;
  before(() => {
    const r = loadRenderSet(PACKAGE_ROOT, env);
    expect(r.problems).to.deep.equal([]);
    set = r.set!;
  });
  beforeEach(async () => {
    s = await startTestServer({
      sessions: true,
      routersFor: ({ inventory, policy, log }) => [ipxeRoute({ inventory, policy, log, renderer: { ipxe: (node, mode, session) => set.ipxe(env, node, mode, session) } })],
    });
    s.addNode('compute-0-0', MAC_A, '127.0.1.1', 'install');
    s.addNode('compute-0-1', MAC_B, '127.0.1.2', 'os');
  });
  afterEach(() => s.close());

  const get = (mac: string, from: string) => s.request({ path: `${BOOT_IPXE_PATH}?mac=${encodeURIComponent(mac)}`, from });

  it("install: the kernel and initrd over HTTP, with the node's session token, the same one its pxelinux config carries", async () => {
    const r = await get(MAC_A.toUpperCase(), '127.0.1.1');
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.equal('text/plain; charset=utf-8');
    expect(r.text.startsWith('#!ipxe\n')).to.equal(true);
    const token = s.inventory.session('compute-0-0' as NodeName)!.token;
    expect(r.text).to.contain(
      `kernel http://10.9.9.9:8080/install/boot/kickswarm/vmlinuz initrd=initrd.img ks=http://10.9.9.9:8080/install/sbin/kickstart.cgi?session=${token} kickswarm.session=${token} kickswarm.frontend=http://10.9.9.9:8080`,
    );
    expect(r.text).to.contain('initrd --name initrd.img http://10.9.9.9:8080/install/boot/kickswarm/initrd.img\nboot\n');
    const node = s.inventory.getNode('compute-0-0' as NodeName)!;
    expect(set.pxelinux(env, node, 'install', token)).to.contain(`kickswarm.session=${token}`);
    expect(pxeEvents(s, 'compute-0-0')).to.deep.equal([{ status: 200, message: 'served boot.ipxe (install) with its session token' }]);
    expect(JSON.stringify(s.inventory.events('compute-0-0' as NodeName, 100))).to.not.contain(token);
  });

  it('os: boots the local disk (BIOS sanboot, UEFI back to the firmware), no token', async () => {
    const r = await get(MAC_B, '127.0.1.2');
    expect(r.status).to.equal(200);
    expect(r.text).to.contain('sanboot --no-describe --drive 0x80');
    expect(r.text).to.contain('iseq ${platform} efi');
    expect(r.text).to.not.contain('kickswarm.session');
    expect(pxeEvents(s, 'compute-0-1')).to.deep.equal([{ status: 200, message: 'served boot.ipxe (os)' }]);
  });

  it('capture: the capture environment with its token', async () => {
    s.inventory.setBootAction({ names: ['compute-0-1' as NodeName] }, 'capture');
    const r = await get(MAC_B, '127.0.1.2');
    const token = s.inventory.session('compute-0-1' as NodeName)!.token;
    expect(r.text).to.contain(`kickswarm.action=capture kickswarm.frontend=http://10.9.9.9:8080 kickswarm.session=${token}`);
  });

  it('403 when the MAC belongs to a node registered with another IP; the token never goes out', async () => {
    const r = await get(MAC_A, '127.0.1.9');
    expect(r.status).to.equal(403);
    expect(r.text).to.not.contain('compute-0-0');
    expect(r.text).to.not.contain('kickswarm.session');
    expect(pxeEvents(s, 'compute-0-0')[0]!.status).to.equal(403);
    expect(pxeEvents(s, 'compute-0-0')[0]!.message).to.contain('registered with IP 127.0.1.1');
  });

  it('404 for an unknown MAC while discovery is off', async () => {
    const r = await get('52:54:00:99:99:99', '127.0.1.1');
    expect(r.status).to.equal(404);
    expect(r.text).to.contain('52:54:00:99:99:99');
  });

  it('400 for a missing, repeated or malformed mac', async () => {
    for (const path of [BOOT_IPXE_PATH, `${BOOT_IPXE_PATH}?mac=`, `${BOOT_IPXE_PATH}?mac=${MAC_A}&mac=${MAC_A}`, `${BOOT_IPXE_PATH}?mac=zz:zz`, `${BOOT_IPXE_PATH}?mac=${'a'.repeat(5000)}`]) {
      const r = await s.request({ path, from: '127.0.1.1' });
      expect(r.status, path.slice(0, 80)).to.equal(400);
      expect(r.text).to.match(/mac/);
    }
    expect(pxeEvents(s, 'compute-0-0')).to.deep.equal([]);
  });

  it('discovery registers an unknown MAC (no token while it awaits approval); over its limit the node gets the discover script', async () => {
    s.inventory.setDiscovery({ appliance: 'compute', rack: 0, firstIp: '127.0.2.1' as Ipv4, startedAt: new Date().toISOString(), maxPending: 1, perMinute: 100 });
    const r = await get('52:54:00:00:00:c1', '127.0.2.1');
    expect(r.status).to.equal(200);
    expect(r.text).to.contain('kernel http://10.9.9.9:8080/install/boot/kickswarm/vmlinuz');
    expect(r.text).to.not.contain('kickswarm.session');
    const found = s.inventory.findByMac('52:54:00:00:00:c1' as never);
    expect(found?.pending).to.equal(true);
    const over = await get('52:54:00:00:00:c2', '127.0.2.2');
    expect(over.status).to.equal(200);
    expect(over.text).to.contain('echo kickswarm: discovery');
    expect(s.inventory.findByMac('52:54:00:00:00:c2' as never)).to.equal(undefined);
  });
});
