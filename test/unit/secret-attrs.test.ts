import path from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import Koa from 'koa';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { SESSION_COOKIE, SessionStore } from '../../server/auth/sessions.js';
import { errorMiddleware } from '../../server/http/errors.js';
import { MASK, isSecretAttr, maskAttrs, maskNode, maskSecrets } from '../../server/inventory/secret-attrs.js';
import { Inventory } from '../../server/inventory/store.js';
import { createLogger, silentLogger } from '../../server/log.js';
import { uiRoutes } from '../../server/ui/routes.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const SECRETS = {
  'bmc.password': 'Sup3r-s3cret',
  'ipmi.pass': 'ipmi-pass-1',
  rootpw: '$6$salt$hashhash',
  'root.crypted': '$6$other$crypt',
  api_token: 'tok-0123',
  'ssh.private': 'PRIVATE-KEY-BYTES',
  'luks.key': 'k3y-bytes',
  'site.secret': 'shh-secret',
  'db.pwd': 'pwd-value',
  'user.pw': 'pw-value',
  'snmp.credential': 'cred-value',
};
const PLAIN = { 'bmc.host': '10.2.0.9', 'bmc.user': 'admin', lang: 'en_US', 'power.driver': 'redfish', 'image.name': 'compute', keyboard: 'us', 'pwm.fan': 'auto' };

describe('secret node attributes: one rule for every view', () => {
  after(cleanupTmpDirs);

  it('names secrets by key (any case) and leaves other attributes alone', () => {
    for (const k of Object.keys(SECRETS)) expect(isSecretAttr(k), k).to.equal(true);
    for (const k of ['BMC.Password', 'Redfish.PASSWORD', 'x.rootpw']) expect(isSecretAttr(k), k).to.equal(true);
    for (const k of Object.keys(PLAIN)) expect(isSecretAttr(k), k).to.equal(false);
  });

  it('masks values (short ones too) without touching the record it was given', () => {
    const attrs = { ...SECRETS, ...PLAIN, 'short.key': 'ab', 'empty.password': '' };
    const m = maskAttrs(attrs);
    for (const k of Object.keys(SECRETS)) expect(m[k]).to.equal(MASK);
    for (const [k, v] of Object.entries(PLAIN)) expect(m[k]).to.equal(v);
    expect(m['short.key']).to.equal(MASK);
    expect(m['empty.password']).to.equal('');
    const node = { name: 'n1', attrs };
    const masked = maskNode(node);
    expect(masked.attrs['bmc.password']).to.equal(MASK);
    expect(node.attrs['bmc.password']).to.equal('Sup3r-s3cret');
    expect(maskSecrets('ipmitool -P Sup3r-s3cret', attrs)).to.equal(`ipmitool -P ${MASK}`);
  });

  it('the logger masks node attributes logged whole or inside a record', async () => {
    let out = '';
    const dest = new Writable({
      write(c: Buffer, _e, cb) {
        out += c.toString();
        cb();
      },
    });
    const log = createLogger('info', { dest: dest as never });
    log.info({ attrs: { ...SECRETS } }, 'attrs');
    log.info({ node: { name: 'n1', attrs: { ...SECRETS, ...PLAIN } } }, 'node');
    log.info({ nodes: { a: { attrs: { 'bmc.password': 'Sup3r-s3cret' } } } }, 'deeper');
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { node?: { attrs: Record<string, string> } });
    expect(lines).to.have.length(3);
    for (const v of Object.values(SECRETS)) expect(out).not.to.contain(v);
    expect(lines[1]!.node!.attrs['bmc.host']).to.equal('10.2.0.9');
    expect(lines[1]!.node!.attrs['bmc.password']).to.equal(MASK);
  });

  it('the dashboard node page lists attributes with secrets masked', async () => {
    const dir = tmpDir();
    const inventory = new Inventory(path.join(dir, 'inventory.sqlite'));
    inventory.addNode({ name: 'compute-0-1' as NodeName, mac: '52:54:00:00:00:01' as Mac, ip: '10.1.0.1' as Ipv4, appliance: 'compute', rack: 0, rank: 1, attrs: { ...SECRETS, ...PLAIN } });
    const sessions = new SessionStore();
    const app = new Koa();
    app.use(errorMiddleware(silentLogger()));
    const router = uiRoutes({
      sessions,
      roleForToken: () => undefined,
      inventory,
      dataDir: dir,
      profileStatus: () => ({ ok: true, generation: 1, loadedAt: new Date(0).toISOString(), errors: [], profiles: [], templates: [] }),
      imageRows: async () => [],
      stalledAfterSeconds: () => 60,
      log: silentLogger(),
    });
    app.use(router.routes());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as AddressInfo).port;
      for (const role of ['admin', 'viewer'] as const) {
        const s = sessions.create(role);
        const res = await fetch(`http://127.0.0.1:${port}/ui/nodes/compute-0-1`, { headers: { cookie: `${SESSION_COOKIE}=${s.id}` } });
        expect(res.status).to.equal(200);
        const html = await res.text();
        expect(html).to.contain('<dt>bmc.host</dt><dd>10.2.0.9</dd>');
        expect(html).to.match(/<dt>bmc\.password<\/dt><dd class="secret"[^>]*>\*{8}<\/dd>/);
        for (const v of Object.values(SECRETS)) expect(html, role).not.to.contain(v);
      }
    } finally {
      server.close();
      inventory.close();
    }
  });
});
