/// <reference lib="dom" />
/**
 * The dashboard in a real browser (Debian chromium via puppeteer-core):
 * sign-in, the fleet updating live through a real demo install, a node's
 * timeline and installer log, a template edit with preview, a broken edit
 * refused with file and line, a reinstall plan and start, and a viewer who
 * can change nothing. Screenshots land in docs/ui/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import type { Browser, Page } from 'puppeteer-core';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { TokenStore } from '../../server/auth/tokens.js';
import { runDemo } from '../../server/demo/run.js';
import { Frontend } from '../../server/frontend.js';
import { haveChromium, launchBrowser, screenshot, signIn, until } from '../helpers/browser.js';
import { skipBecause } from '../helpers/skip.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const silent = pino({ level: 'silent' });

async function startFrontend(nodes = 6): Promise<Frontend> {
  const fe = new Frontend({ dataDir: path.join(tmpDir(), 'data'), overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0 }, log: silent });
  await fe.start();
  for (let i = 0; i < nodes; i++) {
    fe.inventory.addNode({
      name: `compute-${i % 2}-${i}` as NodeName,
      mac: `52:54:00:aa:00:${(i + 1).toString(16).padStart(2, '0')}` as Mac,
      ip: `10.9.0.${i + 1}` as Ipv4,
      appliance: 'compute',
      rack: i % 2,
      rank: i,
    });
  }
  return fe;
}

function apiToken(fe: Frontend): string {
  return fs.readFileSync(fe.dirs.tokenFile, 'utf8').trim();
}

describe('dashboard in chromium', function () {
  this.timeout(300_000);
  let browser: Browser | undefined;
  let page: Page;
  const frontends: Frontend[] = [];

  before(async function () {
    if (!haveChromium()) skipBecause(this, 'chromium is not installed (apt-get install chromium)');
    browser = await launchBrowser();
  });
  beforeEach(async () => {
    page = await browser!.newPage();
  });
  afterEach(async () => {
    await page?.close().catch(() => undefined);
    while (frontends.length) await frontends.pop()!.close();
  });
  after(async () => {
    await browser?.close();
    cleanupTmpDirs();
  });

  it('refuses a wrong token and signs in with the admin token into a session cookie', async () => {
    const fe = await startFrontend();
    frontends.push(fe);
    await page.goto(`${fe.url}/ui/`);
    expect(new URL(page.url()).pathname).to.equal('/ui/login');
    await page.type('#token', 'not-the-token');
    await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
    expect(await page.$eval('#login-error', (e) => e.textContent)).to.match(/wrong token/i);
    await screenshot(page, 'login');
    await signIn(page, fe.url, apiToken(fe));
    expect(new URL(page.url()).pathname).to.equal('/ui/');
    await until(page, `document.body.dataset.fleetReady === '6'`);
    const cookies = await page.cookies();
    const c = cookies.find((x) => x.name === 'kickswarm_session')!;
    expect(c.httpOnly).to.equal(true);
    expect(c.sameSite).to.equal('Strict');
    expect(page.url()).not.to.include(apiToken(fe));
    expect(await page.evaluate('JSON.stringify(localStorage) + JSON.stringify(sessionStorage)')).to.equal('{}{}');
  });

  it('watches a real demo install live until every node shows done, then shows a node timeline and installer log', async () => {
    let checked = false;
    const summary = await runDemo({
      nodes: 3,
      method: 'torrent',
      imageMb: 16,
      loss: 0,
      linger: 1,
      timeoutSeconds: 240,
      keep: false,
      onReady: async (info) => {
        await page.goto(info.signIn);
        await until(page, `document.body.dataset.fleetReady === '3'`);
        await page.evaluate('window.__sameDocument = true');
        expect(await page.$eval('#summary', (e) => (e as HTMLElement).dataset.done)).to.equal('0');
      },
      keepServing: async () => {
        await until(page, `document.querySelector('#summary').dataset.done === '3'`, 60_000, 'every node done in the fleet view');
        expect(await page.evaluate('window.__sameDocument === true')).to.equal(true);
        expect(Number(await page.evaluate('document.body.dataset.updates'))).to.be.greaterThan(0);
        const states = await page.$$eval('#fleet-body td.state', (tds) => tds.map((t) => t.textContent));
        expect(states).to.deep.equal(['done', 'done', 'done']);
        await screenshot(page, 'fleet');
        await page.click('#v-rack');
        await until(page, `document.querySelectorAll('#rack-view a.c.st-done').length === 3`);
        await screenshot(page, 'racks');

        await page.goto(page.url().replace(/\/ui\/.*$/, '/ui/nodes/demo-0-1'));
        const steps = await page.$$eval('#timeline li b', (bs) => bs.map((b) => b.textContent));
        for (const s of ['TFTP', 'kickstart served', 'image started', 'verifying', 'install done', 'flip to os']) {
          if (s === 'TFTP') continue; // the demo's installers start without PXE
          expect(
            steps.some((x) => x?.includes(s)),
            `${s} in ${steps.join(' | ')}`,
          ).to.equal(true);
        }
        const log = await page.$eval('#install-log', (e) => e.textContent ?? '');
        expect(log).to.match(/INFO install state: downloading/);
        expect(log).to.match(/INFO install state: done/);
        await screenshot(page, 'node');
        await page.goto(page.url().replace(/\/ui\/.*$/, '/ui/images'));
        await until(page, `Number(document.querySelector('#swarm-chart').dataset.points) > 1`, 20_000, 'swarm chart points');
        expect(await page.$eval('#images tbody', (e) => e.textContent)).to.match(/demo[\s\S]*3 node\(s\)/);
        await screenshot(page, 'images');
        checked = true;
      },
    });
    expect(checked).to.equal(true);
    expect(summary.ok).to.equal(true);
  });

  it('edits a template with a live preview, refuses a broken edit with file and line, and saves one only when insisted', async () => {
    const fe = await startFrontend(2);
    frontends.push(fe);
    await signIn(page, fe.url, apiToken(fe));
    await page.goto(`${fe.url}/ui/templates?path=templates/kickstart.hbs`);
    await until(page, `Number(document.body.dataset.previews) >= 1`);
    const file = path.join(fe.dirs.templates, 'kickstart.hbs');
    const original = fs.readFileSync(file, 'utf8');
    const lines = original.split('\n');
    const at = lines.findIndex((l) => l.startsWith('text'));
    const edited = [...lines.slice(0, at + 1), '# edited in the browser for {{node.name}}', ...lines.slice(at + 1)].join('\n');
    await page.$eval(
      '#editor',
      (e, v) => {
        (e as HTMLTextAreaElement).value = v as string;
        e.dispatchEvent(new Event('input'));
      },
      edited,
    );
    await until(page, `document.querySelector('#preview-kickstart').textContent.includes('# edited in the browser for compute-0-0')`);
    await screenshot(page, 'templates');
    await page.click('#save');
    await until(page, `document.querySelector('#save-result').textContent.startsWith('saved')`);
    expect(fs.readFileSync(file, 'utf8')).to.equal(edited);

    const brokenLine = at + 2;
    const broken = [...lines.slice(0, at + 1), '# a typo: {{attrs.hostnme}}', ...lines.slice(at + 1)].join('\n');
    await page.$eval(
      '#editor',
      (e, v) => {
        (e as HTMLTextAreaElement).value = v as string;
        e.dispatchEvent(new Event('input'));
      },
      broken,
    );
    await page.click('#save');
    await until(page, `!document.querySelector('#save-anyway').hidden`);
    const problems = await page.$$eval('#problems .problem', (ps) => ps.map((p) => p.textContent ?? ''));
    expect(problems.length).to.be.greaterThan(0);
    expect(problems.join('\n')).to.include(`templates/kickstart.hbs:${brokenLine}`);
    expect(fs.readFileSync(file, 'utf8')).to.equal(edited);
    await screenshot(page, 'templates-refused');
    const generation = fe.inventory && ((await (await fetch(`${fe.url}/api/v1/profiles/status`, { headers: { authorization: `Bearer ${apiToken(fe)}` } })).json()) as { generation: number });
    await page.click('#save-anyway');
    await until(page, `document.querySelector('#save-result').textContent.startsWith('saved anyway')`);
    expect(fs.readFileSync(file, 'utf8')).to.equal(broken);
    const after = (await (await fetch(`${fe.url}/api/v1/profiles/status`, { headers: { authorization: `Bearer ${apiToken(fe)}` } })).json()) as { ok: boolean; generation: number };
    expect(after.ok).to.equal(false);
    expect(after.generation).to.equal(generation.generation);
  });

  it('shows a reinstall plan with kickstart diffs and starts the reinstall from the browser', async () => {
    const fe = await startFrontend(4);
    frontends.push(fe);
    fe.inventory.setServedKickstart('compute-1-1' as NodeName, { sha256: '0'.repeat(64), text: 'text\n# an older kickstart\n' });
    await signIn(page, fe.url, apiToken(fe));
    await page.goto(`${fe.url}/ui/reinstall`);
    await page.click('#plan-button');
    await until(page, `document.querySelectorAll('#plan-body tr').length === 4`);
    const kinds = await page.$$eval('#plan-body tr', (trs) => trs.map((t) => [t.getAttribute('data-node'), t.children[4]!.textContent]));
    expect(Object.fromEntries(kinds)).to.deep.include({ 'compute-1-1': 'changed', 'compute-0-0': 'new' });
    expect(await page.$eval('tr[data-node="compute-1-1"] pre', (e) => e.textContent)).to.include('-# an older kickstart');
    await page.$eval('tr[data-node="compute-1-1"] details', (d) => ((d as HTMLDetailsElement).open = true));
    await screenshot(page, 'reinstall-plan');
    await Promise.all([page.waitForNavigation(), page.click('#start-button')]);
    expect(new URL(page.url()).pathname).to.equal('/ui/');
    expect(fe.inventory.listNodes().map((n) => n.bootAction)).to.deep.equal(['install', 'install', 'install', 'install']);
    await until(page, `[...document.querySelectorAll('#fleet-body tr td:nth-child(4)')].every((t) => t.textContent === 'install')`);
  });

  it('lets a viewer see everything and change nothing: no action buttons, and 403 from the API when called anyway', async () => {
    const fe = await startFrontend(2);
    frontends.push(fe);
    const { token } = new TokenStore(fe.dirs.root, apiToken(fe)).create('viewer');
    await signIn(page, fe.url, token);
    await until(page, `document.body.dataset.fleetReady === '2'`);
    expect(await page.$eval('#role', (e) => e.textContent)).to.equal('viewer');
    await page.goto(`${fe.url}/ui/nodes/compute-0-0`);
    expect(await page.$('#actions')).to.equal(null);
    expect(await page.$('#set-boot')).to.equal(null);
    await page.goto(`${fe.url}/ui/templates?path=templates/kickstart.hbs`);
    expect(await page.$('#save')).to.equal(null);
    await page.goto(`${fe.url}/ui/reinstall`);
    expect(await page.$('#start-button')).to.equal(null);
    const statuses = await page.evaluate(async () => {
      const csrf = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')!.content;
      const h = { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf };
      const a = await fetch('/api/v1/nodes/compute-0-0/boot', { method: 'PUT', headers: h, body: JSON.stringify({ action: 'install' }) });
      const b = await fetch('/api/v1/reinstall', { method: 'POST', headers: h, body: JSON.stringify({ all: true }) });
      const c = await fetch('/api/v1/templates/file', { method: 'PUT', headers: h, body: JSON.stringify({ path: 'templates/kickstart.hbs', text: 'x' }) });
      const d = await fetch('/api/v1/fleet');
      return [a.status, b.status, c.status, d.status];
    });
    expect(statuses).to.deep.equal([403, 403, 403, 200]);
    expect(fe.inventory.listNodes().map((n) => n.bootAction)).to.deep.equal(['os', 'os']);
  });

  it('refuses a write from an admin session without the CSRF token', async () => {
    const fe = await startFrontend(1);
    frontends.push(fe);
    await signIn(page, fe.url, apiToken(fe));
    const status = await page.evaluate(async () => {
      const r = await fetch('/api/v1/nodes/compute-0-0/boot', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'install' }) });
      return r.status;
    });
    expect(status).to.equal(403);
    expect(fe.inventory.requireNode('compute-0-0').bootAction).to.equal('os');
  });
});
