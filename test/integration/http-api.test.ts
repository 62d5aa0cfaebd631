import { expect } from 'chai';
import {
  API_BOOT_PATH,
  API_NODES_PATH,
  API_PROFILES_STATUS_PATH,
  type ApiErrorBody,
  type NodeDetailResponse,
  type NodeListResponse,
  type NodeResponse,
  apiNodeBootPath,
  apiNodePath,
} from '../../protocol/api.js';
import { type TestServer, startTestServer } from '../helpers/http.js';

describe('http: /api/v1', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer();
    s.addNode('compute-0-0', '52:54:00:00:01:00', '10.1.0.10', 'os', 'compute');
    s.addNode('login-0-0', '52:54:00:00:02:00', '10.1.0.20', 'os', 'login');
  });
  afterEach(() => s.close());

  const errorOf = (text: string): ApiErrorBody['error'] => (JSON.parse(text) as ApiErrorBody).error;

  it('401 without a token, with a wrong one, or a non-Bearer scheme; on every path', async () => {
    for (const req of [
      { path: API_NODES_PATH },
      { path: API_NODES_PATH, token: 'wrong' },
      { path: API_NODES_PATH, token: `${s.token}x` },
      { path: API_NODES_PATH, headers: { authorization: `Basic ${s.token}` } },
      { method: 'DELETE', path: apiNodePath('compute-0-0') },
    ]) {
      const r = await s.request(req);
      expect(r.status, JSON.stringify(req)).to.equal(401);
      expect(r.headers['www-authenticate']).to.contain('Bearer');
      expect(errorOf(r.text).code).to.equal('unauthorized');
    }
    expect(s.inventory.getNode('compute-0-0')).to.not.equal(undefined);
    // A path no route matches has nothing to authorise: a 404 that names nothing of the inventory.
    const none = await s.request({ path: '/api/v1/no-such-route' });
    expect(none.status).to.equal(404);
    expect(errorOf(none.text).code).to.equal('not_found');
  });

  it('an empty configured token refuses everything', async () => {
    const t = await startTestServer({ apiToken: '' });
    try {
      expect((await t.request({ path: API_NODES_PATH, headers: { authorization: 'Bearer ' } })).status).to.equal(401);
    } finally {
      await t.close();
    }
  });

  it('lists nodes, filtered by appliance', async () => {
    const all = (await s.request({ path: API_NODES_PATH, token: true })).json<NodeListResponse>();
    expect(all.nodes.map((n) => n.name)).to.deep.equal(['compute-0-0', 'login-0-0']);
    const some = (await s.request({ path: `${API_NODES_PATH}?appliance=login`, token: true })).json<NodeListResponse>();
    expect(some.nodes.map((n) => n.name)).to.deep.equal(['login-0-0']);
  });

  it('shows a node with its recent events; 404 unknown, 400 malformed name', async () => {
    const r = await s.request({ path: apiNodePath('compute-0-0'), token: true });
    expect(r.status).to.equal(200);
    const d = r.json<NodeDetailResponse>();
    expect(d.node).to.include({ name: 'compute-0-0', mac: '52:54:00:00:01:00', ip: '10.1.0.10', bootAction: 'os' });
    expect(d.events.map((e) => e.kind)).to.deep.equal(['inventory']);
    const missing = await s.request({ path: apiNodePath('compute-9-9'), token: true });
    expect(missing.status).to.equal(404);
    expect(errorOf(missing.text)).to.deep.equal({ code: 'not_found', message: 'no node named compute-9-9' });
    expect((await s.request({ path: apiNodePath('Bad Name'), token: true })).status).to.equal(400);
  });

  it('masks secret attributes in every node answer; ?secrets=show for the admin role only', async () => {
    const v = await startTestServer({ viewerToken: 'viewer-token-0123456789' });
    try {
      const attrs = { 'bmc.host': '10.2.0.9', 'bmc.password': 'Sup3r-s3cret', rootpw: '$6$salt$hash' };
      const added = await v.request({ method: 'POST', path: API_NODES_PATH, token: true, body: { name: 'compute-0-9', mac: '52:54:00:00:09:00', ip: '10.1.0.90', attrs } });
      expect(added.status, added.text).to.equal(201);
      const masked = { 'bmc.host': '10.2.0.9', 'bmc.password': '********', rootpw: '********' };
      expect(added.json<NodeResponse>().node.attrs).to.deep.equal(masked);
      const answers = [
        added.text,
        (await v.request({ path: API_NODES_PATH, token: true })).text,
        (await v.request({ path: apiNodePath('compute-0-9'), token: true })).text,
        (await v.request({ path: apiNodePath('compute-0-9'), token: 'viewer-token-0123456789' })).text,
        (await v.request({ method: 'PUT', path: apiNodeBootPath('compute-0-9'), token: true, body: { action: 'os' } })).text,
        (await v.request({ method: 'POST', path: API_BOOT_PATH, token: true, body: { action: 'os', all: true } })).text,
      ];
      for (const text of answers) {
        expect(text).not.to.contain('Sup3r-s3cret');
        expect(text).not.to.contain('$6$salt$hash');
      }
      expect((JSON.parse(answers[2]!) as NodeDetailResponse).node.attrs).to.deep.equal(masked);
      const clear = await v.request({ path: `${apiNodePath('compute-0-9')}?secrets=show`, token: true });
      expect(clear.status).to.equal(200);
      expect(clear.json<NodeDetailResponse>().node.attrs).to.deep.equal(attrs);
      const viewer = await v.request({ path: `${apiNodePath('compute-0-9')}?secrets=show`, token: 'viewer-token-0123456789' });
      expect(viewer.status).to.equal(403);
      expect(viewer.text).not.to.contain('Sup3r-s3cret');
      expect((await v.request({ path: `${apiNodePath('compute-0-9')}?secrets=yes`, token: true })).status).to.equal(400);
      expect(JSON.stringify(v.logs)).not.to.contain('Sup3r-s3cret');
    } finally {
      await v.close();
    }
  });

  it('adds a node, normalising input, with CLI defaults', async () => {
    const r = await s.request({
      method: 'POST',
      path: API_NODES_PATH,
      token: true,
      body: { name: 'compute-0-1', mac: '52-54-00-00-01-01', ip: '10.1.0.11', rack: 0, rank: 1, attrs: { 'disk.root': '/dev/sda' } },
    });
    expect(r.status).to.equal(201);
    expect(r.headers.location).to.equal('/api/v1/nodes/compute-0-1');
    expect(r.json<NodeResponse>().node).to.deep.include({ mac: '52:54:00:00:01:01', appliance: 'compute', bootAction: 'os', rack: 0, rank: 1 });
    expect(s.inventory.getNode('compute-0-1')!.attrs).to.deep.equal({ 'disk.root': '/dev/sda' });
  });

  it('refuses bad bodies with 400 and clashes with 409 naming the holder', async () => {
    const post = (body: unknown, headers?: Record<string, string>) => s.request({ method: 'POST', path: API_NODES_PATH, token: true, body: body as object, headers });
    const bad = await post({ name: 'x-1', mac: 'nope', ip: '10.1.0.99' });
    expect(bad.status).to.equal(400);
    expect(errorOf(bad.text).message).to.contain('malformed MAC');
    expect((await post({ name: 'x-1', mac: '52:54:00:00:09:09', ip: '10.1.0.99', extra: 1 })).status).to.equal(400);
    expect((await post({ name: 'x-1', mac: '52:54:00:00:09:09' })).status).to.equal(400);
    expect((await post('{"name":', { 'content-type': 'application/json' })).status).to.equal(400);
    expect((await post('')).status).to.equal(400);
    expect((await post([1, 2])).status).to.equal(400);
    const dupMac = await post({ name: 'x-1', mac: '52:54:00:00:01:00', ip: '10.1.0.99' });
    expect(dupMac.status).to.equal(409);
    expect(errorOf(dupMac.text)).to.deep.equal({ code: 'conflict', message: 'MAC 52:54:00:00:01:00 already belongs to node compute-0-0' });
    const dupName = await post({ name: 'compute-0-0', mac: '52:54:00:00:09:09', ip: '10.1.0.99' });
    expect(dupName.status).to.equal(409);
    expect(errorOf(dupName.text).message).to.equal('node compute-0-0 already exists');
    expect(s.inventory.count()).to.equal(2);
  });

  it('removes a node; removing it again is 404', async () => {
    const r = await s.request({ method: 'DELETE', path: apiNodePath('login-0-0'), token: true });
    expect(r.status).to.equal(200);
    expect(r.json()).to.deep.equal({ removed: 'login-0-0' });
    expect((await s.request({ method: 'DELETE', path: apiNodePath('login-0-0'), token: true })).status).to.equal(404);
  });

  it('sets one node boot action; 400 unknown action, 404 unknown node', async () => {
    const r = await s.request({ method: 'PUT', path: apiNodeBootPath('compute-0-0'), token: true, body: { action: 'install' } });
    expect(r.status).to.equal(200);
    expect(r.json<NodeResponse>().node.bootAction).to.equal('install');
    expect((await s.request({ method: 'PUT', path: apiNodeBootPath('compute-0-0'), token: true, body: { action: 'dance' } })).status).to.equal(400);
    expect((await s.request({ method: 'PUT', path: apiNodeBootPath('nobody'), token: true, body: { action: 'os' } })).status).to.equal(404);
  });

  it('sets boot actions in bulk by all, appliance or names, exactly one selector', async () => {
    const boot = (body: object) => s.request({ method: 'POST', path: API_BOOT_PATH, token: true, body });
    const byApp = await boot({ action: 'install', appliance: 'login' });
    expect(byApp.json<NodeListResponse>().nodes.map((n) => [n.name, n.bootAction])).to.deep.equal([['login-0-0', 'install']]);
    expect(s.inventory.getNode('compute-0-0')!.bootAction).to.equal('os');
    const all = await boot({ action: 'install', all: true });
    expect(all.json<NodeListResponse>().nodes.every((n) => n.bootAction === 'install')).to.equal(true);
    expect((await boot({ action: 'os', names: ['compute-0-0'] })).status).to.equal(200);
    expect(s.inventory.getNode('compute-0-0')!.bootAction).to.equal('os');
    const unknown = await boot({ action: 'os', names: ['login-0-0', 'ghost'] });
    expect(unknown.status).to.equal(404);
    expect(s.inventory.getNode('login-0-0')!.bootAction).to.equal('install');
    expect((await boot({ action: 'os' })).status).to.equal(400);
    expect((await boot({ action: 'os', all: true, appliance: 'login' })).status).to.equal(400);
    expect((await boot({ action: 'os', all: false })).status).to.equal(400);
  });

  it('reports the renderer status', async () => {
    const r = await s.request({ path: API_PROFILES_STATUS_PATH, token: true });
    expect(r.status).to.equal(200);
    expect(r.json()).to.include({ ok: true, generation: 3 });
  });

  it('answers unknown API routes and 413 in JSON', async () => {
    const r = await s.request({ path: '/api/v1/nothing', token: true });
    expect(r.status).to.equal(404);
    expect(errorOf(r.text).code).to.equal('not_found');
    const big = await s.request({ method: 'POST', path: API_NODES_PATH, token: true, body: `{"name":"${'a'.repeat(100_000)}"}`, headers: { 'content-type': 'application/json' } });
    expect(big.status).to.equal(413);
    expect(errorOf(big.text).code).to.equal('too_large');
  });
});
