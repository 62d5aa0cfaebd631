/**
 * The dashboard at `/ui/`: server-rendered pages over the same inventory,
 * renderer and admin API the CLI uses. Reads are rendered here; every change
 * a page makes goes through `/api/v1` from its script, with the session cookie
 * and the CSRF token, so the UI adds no second way to change state.
 *
 *   GET  /ui/login[?once=CODE]   sign-in form, or spend a one-time link
 *   POST /ui/login               token=... -> session cookie, 303 /ui/ (401 page when wrong)
 *   POST /ui/logout              csrf=...
 *   GET  /ui/, /ui/nodes/NAME, /ui/reinstall, /ui/templates[?path=P], /ui/images
 *   GET  /ui/static/NAME?v=HASH  assets (ETag, immutable)
 *
 * A page without a session redirects to the sign-in form. The token is never
 * put in a URL or in browser storage.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { BOOT_ACTIONS, parseNodeName } from '../../protocol/node.js';
import { SESSION_COOKIE, type Session, type SessionStore, sameSecret } from '../auth/sessions.js';
import type { Role } from '../auth/tokens.js';
import { POWER_DRIVERS } from '../cluster/power.js';
import { isActiveState, nodeStatus } from '../cluster/status.js';
import { isSecretAttr, maskNode } from '../inventory/secret-attrs.js';
import type { Inventory } from '../inventory/store.js';
import type { Logger } from '../log.js';
import { listEditable, readEditable } from '../render/edit.js';
import type { ProfileStatus } from '../render/types.js';
import { readFields, queryValue } from '../http/body.js';
import type { ImageRow } from '../http/routes/images-api.js';
import { type Asset, loadAssets } from './assets.js';
import { timeline } from './timeline.js';
import { type Page, loadViews } from './views.js';

export interface UiDeps {
  sessions: SessionStore;
  roleForToken: (token: string) => Role | undefined;
  inventory: Inventory;
  dataDir: string;
  profileStatus: () => ProfileStatus;
  imageRows: () => Promise<ImageRow[]>;
  stalledAfterSeconds: () => number;
  log: Logger;
}

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export function uiRoutes(deps: UiDeps): Router {
  const assets: Map<string, Asset> = loadAssets();
  const views: Map<string, Page> = loadViews(assets);
  const router = new Router();
  const { sessions, inventory } = deps;

  const html = (ctx: Context, view: string, data: Record<string, unknown>, status = 200): void => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) ctx.set(k, v);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = views.get(view)!(data);
  };
  const setCookie = (ctx: Context, s: Session): void => {
    ctx.cookies.set(SESSION_COOKIE, s.id, { httpOnly: true, sameSite: 'strict', path: '/', overwrite: true, maxAge: s.expiresAt - Date.now() });
  };
  /** The session, or a redirect to the sign-in form (returns undefined). */
  const session = (ctx: Context): Session | undefined => {
    const s = sessions.get(ctx.cookies.get(SESSION_COOKIE));
    if (!s) ctx.redirect('/ui/login');
    return s;
  };
  const base = (s: Session, page: string, title: string, extra: Record<string, unknown> = {}) => ({
    role: s.role,
    admin: s.role === 'admin',
    csrf: s.csrf,
    page,
    title,
    ...extra,
  });

  router.get('/ui/login', (ctx) => {
    const once = queryValue(ctx, 'once');
    if (once !== undefined) {
      const s = once.length <= 100 ? sessions.redeem(once) : undefined;
      if (!s) return html(ctx, 'login', { error: 'That sign-in link was already used or has expired. Sign in with a token.' }, 401);
      setCookie(ctx, s);
      ctx.status = 303;
      ctx.redirect('/ui/');
      return;
    }
    html(ctx, 'login', {});
  });

  router.post('/ui/login', async (ctx) => {
    const f = await readFields(ctx, 8 * 1024);
    const token = (f.get('token') ?? '').trim();
    const role = token ? deps.roleForToken(token) : undefined;
    if (!role) {
      deps.log.warn({ ip: ctx.req.socket.remoteAddress }, 'dashboard sign-in refused: wrong token');
      return html(ctx, 'login', { error: 'Wrong token.' }, 401);
    }
    const s = sessions.create(role);
    setCookie(ctx, s);
    ctx.status = 303;
    ctx.redirect('/ui/');
  });

  router.post('/ui/logout', async (ctx) => {
    const s = sessions.get(ctx.cookies.get(SESSION_COOKIE));
    const f = await readFields(ctx, 8 * 1024);
    if (s && sameSecret(s.csrf, f.get('csrf') ?? '')) sessions.destroy(s.id);
    ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 0 });
    ctx.status = 303;
    ctx.redirect('/ui/login');
  });

  router.get('/ui/static/:name', (ctx) => {
    const a = assets.get(ctx.params.name ?? '');
    if (!a) return;
    ctx.set('ETag', a.etag);
    ctx.set('Cache-Control', queryValue(ctx, 'v') === a.version ? 'public, max-age=31536000, immutable' : 'no-cache');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.type = a.type;
    if (ctx.get('if-none-match') === a.etag) {
      ctx.status = 304;
      return;
    }
    ctx.body = a.body;
  });

  router.get(['/ui', '/ui/'], (ctx) => {
    if (!ctx.path.endsWith('/')) return ctx.redirect('/ui/');
    const s = session(ctx);
    if (s) html(ctx, 'fleet', base(s, 'fleet', 'Fleet', { scripts: ['fleet.js'] }));
  });

  router.get('/ui/nodes/:name', (ctx) => {
    const s = session(ctx);
    if (!s) return;
    // Secret attribute values never reach the page (one rule with the CLI and API: ../inventory/secret-attrs.ts).
    const node = maskNode(inventory.requireNode(parseNodeName(ctx.params.name ?? '')));
    const attrs = Object.keys(node.attrs)
      .sort()
      .map((key) => ({ key, value: node.attrs[key], secret: isSecretAttr(key) }));
    const events = inventory.events(node.name, 500);
    const status = nodeStatus(node, events.at(-1), new Date(), deps.stalledAfterSeconds());
    const log = inventory.installLog(node.name, 1000);
    html(
      ctx,
      'node',
      base(s, 'node', node.name, {
        node,
        attrs,
        status,
        active: Boolean(node.install && isActiveState(node.install.state)) || node.bootAction === 'install',
        timeline: timeline(events),
        events: events.slice(-200).reverse(),
        log,
        logCount: log.length,
        bootActions: BOOT_ACTIONS,
        powerDrivers: POWER_DRIVERS,
        scripts: ['node.js'],
      }),
    );
  });

  router.get('/ui/reinstall', (ctx) => {
    const s = session(ctx);
    if (!s) return;
    const nodes = inventory.listNodes();
    const appliances = [...new Set(nodes.map((n) => n.appliance))].sort();
    const racks = [...new Set(nodes.map((n) => n.rack).filter((r): r is number => r !== null))].sort((a, b) => a - b);
    html(ctx, 'reinstall', base(s, 'reinstall', 'Reinstall', { nodeCount: nodes.length, appliances, racks, powerDrivers: POWER_DRIVERS, scripts: ['reinstall.js'] }));
  });

  router.get('/ui/templates', (ctx) => {
    const s = session(ctx);
    if (!s) return;
    const files = listEditable(deps.dataDir);
    const p = queryValue(ctx, 'path');
    const text = p ? readEditable(deps.dataDir, p) : undefined;
    const names = inventory.listNodes().map((n) => n.name);
    html(
      ctx,
      'templates',
      base(s, 'templates', 'Templates', { files, path: p, text, status: deps.profileStatus(), nodeNames: names.slice(0, 1000), firstNode: names[0] ?? '', scripts: ['templates.js'] }),
    );
  });

  router.get('/ui/images', async (ctx) => {
    const s = session(ctx);
    if (!s) return;
    html(ctx, 'images', base(s, 'images', 'Images', { images: await deps.imageRows(), styles: ['uPlot.min.css'], scripts: ['uPlot.iife.min.js', 'images.js'] }));
  });

  return router;
}
