import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import Koa from 'koa';
import pino from 'pino';
import { SessionStore } from '../../server/auth/sessions.js';
import { TokenStore } from '../../server/auth/tokens.js';
import { apiAuth } from '../../server/http/api-auth.js';
import { errorMiddleware } from '../../server/http/errors.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

describe('dashboard auth: token roles and sessions', () => {
  after(cleanupTmpDirs);

  it('gives the api-token admin, stored tokens their role, anything else nothing; only hashes are stored', () => {
    const dir = tmpDir();
    const store = new TokenStore(dir, 'the-admin-token');
    const v = store.create('viewer');
    const a = store.create('admin');
    expect(store.roleFor('the-admin-token')).to.equal('admin');
    expect(store.roleFor(v.token)).to.equal('viewer');
    expect(store.roleFor(a.token)).to.equal('admin');
    expect(store.roleFor('nope')).to.equal(undefined);
    expect(store.roleFor('')).to.equal(undefined);
    const file = fs.readFileSync(path.join(dir, 'tokens.json'), 'utf8');
    expect(file).not.to.include(v.token);
    expect(fs.statSync(path.join(dir, 'tokens.json')).mode & 0o777).to.equal(0o600);
    // another process (the CLI) revokes: this store sees it at once
    new TokenStore(dir, 'the-admin-token').revoke(v.record.id);
    expect(store.roleFor(v.token)).to.equal(undefined);
    expect(() => store.revoke('feedface')).to.throw(/no token with id/);
  });

  it('bounds sessions, expires them, and spends a one-time link once', () => {
    let now = 1_000_000;
    const s = new SessionStore({ maxSessions: 3, ttlMs: 1000, now: () => now });
    const first = s.create('admin');
    s.create('viewer');
    s.create('viewer');
    s.create('admin');
    expect(s.size).to.equal(3);
    expect(s.get(first.id)).to.equal(undefined);
    const code = s.oneTimeCode('viewer');
    const got = s.redeem(code);
    expect(got?.role).to.equal('viewer');
    expect(s.redeem(code)).to.equal(undefined);
    now += 1001;
    expect(s.get(got!.id)).to.equal(undefined);
    const late = s.oneTimeCode('admin');
    now += 16 * 60_000;
    expect(s.redeem(late)).to.equal(undefined);
  });

  describe('/api/v1 with roles', () => {
    let server: import('node:http').Server;
    let base: string;
    const sessions = new SessionStore();
    const roles: Record<string, 'admin' | 'viewer'> = { A: 'admin', V: 'viewer' };
    before(async () => {
      const app = new Koa();
      app.use(errorMiddleware(pino({ level: 'silent' })));
      app.use(apiAuth({ roleForToken: (t) => roles[t], sessions }));
      app.use((ctx) => (ctx.body = { role: ctx.state.role as string }));
      server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/api/v1/x`;
    });
    after(() => server.close());

    const call = async (method: string, headers: Record<string, string>) => {
      const r = await fetch(base, { method, headers });
      return [r.status, ((await r.json()) as { role?: string; error?: { code: string } }).role ?? ''] as const;
    };

    it('admin reads and writes, viewer only reads, wrong or no token is 401', async () => {
      expect((await call('GET', { authorization: 'Bearer A' }))[0]).to.equal(200);
      expect((await call('POST', { authorization: 'Bearer A' }))[0]).to.equal(200);
      expect(await call('GET', { authorization: 'Bearer V' })).to.deep.equal([200, 'viewer']);
      for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) expect((await call(m, { authorization: 'Bearer V' }))[0], m).to.equal(403);
      expect((await call('GET', { authorization: 'Bearer X' }))[0]).to.equal(401);
      expect((await call('GET', {}))[0]).to.equal(401);
    });

    it('a session cookie reads; its writes need the CSRF token; a viewer session cannot write at all', async () => {
      const a = sessions.create('admin');
      const v = sessions.create('viewer');
      const cookie = (id: string) => `kickswarm_session=${id}`;
      expect((await call('GET', { cookie: cookie(a.id) }))[0]).to.equal(200);
      expect((await call('PUT', { cookie: cookie(a.id) }))[0]).to.equal(403);
      expect((await call('PUT', { cookie: cookie(a.id), 'x-csrf-token': 'wrong' }))[0]).to.equal(403);
      expect((await call('PUT', { cookie: cookie(a.id), 'x-csrf-token': a.csrf }))[0]).to.equal(200);
      expect((await call('PUT', { cookie: cookie(v.id), 'x-csrf-token': v.csrf }))[0]).to.equal(403);
      expect((await call('GET', { cookie: cookie('forged') }))[0]).to.equal(401);
    });
  });
});
