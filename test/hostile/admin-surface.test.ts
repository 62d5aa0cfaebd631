/**
 * Hostile hosts against the admin surface: the `/api/v1` token check cannot be
 * dodged by spelling the path differently, JSON bodies need a JSON type (no
 * cross-site form posts), and the OMF routes need the admin or OMF token.
 * After every attack a well-behaved node still gets its kickstart.
 */
import { expect } from 'chai';
import { API_NODES_PATH, KICKSTART_PATH, OMF_CLEAR_BOOT_IMAGE_PATH, OMF_SET_BOOT_IMAGE_PATH } from '../../protocol/api.js';
import { type TestServer, startTestServer } from '../helpers/http.js';

const GOOD_MAC = '52:54:00:aa:00:01';
const GOOD_IP = '127.0.1.1';
const VICTIM_MAC = '52:54:00:aa:00:02';
const ATTACKER = '127.0.66.6';
const OMF_TOKEN = 'omf-token-0123456789abcdef';

async function goodNodeServed(s: TestServer): Promise<void> {
  const r = await s.request({ path: KICKSTART_PATH, from: GOOD_IP, headers: { 'X-RHN-Provisioning-MAC-0': `eth0 ${GOOD_MAC}` } });
  expect(r.status).to.equal(200);
  expect(r.text).to.equal(`# kickstart for good-0-0\nnetwork --ip=${GOOD_IP}\n`);
}

function code(text: string): string {
  return (JSON.parse(text) as { error: { code: string } }).error.code;
}

describe('hostile: admin surface', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer({ omfToken: OMF_TOKEN });
    s.addNode('good-0-0', GOOD_MAC, GOOD_IP, 'install');
    s.addNode('victim-0-0', VICTIM_MAC, '127.0.1.2', 'os');
  });
  afterEach(() => s.close());

  it('GET of the node list in any spelling of the path is 401 without the token', async () => {
    for (const path of [
      '/API/v1/nodes',
      '/api/V1/nodes',
      '/Api/V1/Nodes',
      '/api/v1/nodes/',
      '/API/V1/NODES/',
      '/api/v1/NODES?appliance=compute',
      '/api/v1/nodes/victim-0-0',
      '/API/v1/nodes/victim-0-0',
      '/api/v1/profiles/STATUS',
    ]) {
      const r = await s.request({ path, from: ATTACKER });
      expect(r.status, path).to.equal(401);
      expect(code(r.text), path).to.equal('unauthorized');
      expect(r.text, path).to.not.contain('victim');
    }
    await goodNodeServed(s);
  });

  it('POST, PUT and DELETE in another case are 401 and change nothing', async () => {
    const add = await s.request({ method: 'POST', path: '/API/v1/nodes', from: ATTACKER, body: { name: 'evil-0-0', mac: '52:54:00:ee:00:01', ip: '127.0.66.6' } });
    expect(add.status).to.equal(401);
    const boot = await s.request({ method: 'PUT', path: '/Api/v1/nodes/victim-0-0/boot', from: ATTACKER, body: { action: 'install' } });
    expect(boot.status).to.equal(401);
    const bulk = await s.request({ method: 'POST', path: '/API/V1/BOOT', from: ATTACKER, body: { action: 'install', all: true } });
    expect(bulk.status).to.equal(401);
    const del = await s.request({ method: 'DELETE', path: '/API/v1/nodes/victim-0-0', from: ATTACKER });
    expect(del.status).to.equal(401);
    expect(s.inventory.getNode('evil-0-0')).to.equal(undefined);
    expect(s.inventory.getNode('victim-0-0')!.bootAction).to.equal('os');
    await goodNodeServed(s);
  });

  it('a JSON body without a JSON Content-Type is 415, even with the token (cross-site form posts)', async () => {
    const body = JSON.stringify({ name: 'evil-0-0', mac: '52:54:00:ee:00:01', ip: '127.0.66.6' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      const r = await s.request({ method: 'POST', path: API_NODES_PATH, token: true, headers, body });
      expect(r.status, String(type)).to.equal(415);
      expect(r.text).to.contain('Content-Type: application/json');
    }
    const form = await s.request({ method: 'POST', path: '/api/v1/boot', token: true, headers: { 'content-type': 'text/plain' }, body: '{"action":"install","all":true}' });
    expect(form.status).to.equal(415);
    expect(s.inventory.getNode('evil-0-0')).to.equal(undefined);
    expect(s.inventory.getNode('victim-0-0')!.bootAction).to.equal('os');
    const ok = await s.request({ method: 'POST', path: API_NODES_PATH, token: true, headers: { 'content-type': 'application/json; charset=utf-8' }, body });
    expect(ok.status).to.equal(201);
    await goodNodeServed(s);
  });

  it('OMF setBootImage/clearBootImage without a token, or with a wrong one, are 401 and change nothing', async () => {
    for (const [path, headers] of [
      [`${OMF_SET_BOOT_IMAGE_PATH}?node=victim-0-0`, {}],
      [`/PXE/setBootImage?node=victim-0-0`, {}],
      [`/pxe/SETBOOTIMAGE?node=victim-0-0`, {}],
      [`${OMF_SET_BOOT_IMAGE_PATH}?node=victim-0-0`, { authorization: 'Bearer wrong-token' }],
      [`${OMF_SET_BOOT_IMAGE_PATH}?node=victim-0-0`, { authorization: `Basic ${OMF_TOKEN}` }],
      [`${OMF_CLEAR_BOOT_IMAGE_PATH}?node=good-0-0`, {}],
      [`/pxe/ClearBootImage?node=good-0-0`, {}],
    ] as const) {
      const r = await s.request({ path, from: ATTACKER, headers });
      expect(r.status, path).to.equal(401);
      expect(r.text, path).to.match(/^<\?xml version='1.0'\?>\n<ERROR code="unauthorized">/);
    }
    expect(s.inventory.getNode('victim-0-0')!.bootAction).to.equal('os');
    expect(s.inventory.getNode('good-0-0')!.bootAction).to.equal('install');
    await goodNodeServed(s);
  });

  it('OMF routes work with the OMF token or the admin token, and answer no addresses', async () => {
    const set = await s.request({ path: `${OMF_SET_BOOT_IMAGE_PATH}?node=victim-0-0`, token: OMF_TOKEN });
    expect(set.status).to.equal(200);
    expect(set.text).to.equal(`<?xml version='1.0'?>\n<setBootImage status="OK">\n  <node name="victim-0-0" action="install"/>\n</setBootImage>\n`);
    const clear = await s.request({ path: `${OMF_CLEAR_BOOT_IMAGE_PATH}?node=victim-0-0`, token: true });
    expect(clear.status).to.equal(200);
    expect(clear.text).to.not.contain(VICTIM_MAC).and.not.contain('127.0.1.2');
    expect(s.inventory.getNode('victim-0-0')!.bootAction).to.equal('os');
    await goodNodeServed(s);
  });
});
