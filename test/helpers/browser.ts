/**
 * Debian's chromium driven by puppeteer-core (nothing downloads a browser):
 * launch, sign in through the dashboard's form, poll the page for a state,
 * and save screenshots to docs/ui/.
 */
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { REPO } from './cli.js';

export const CHROMIUM = process.env.KICKSWARM_CHROMIUM ?? '/usr/bin/chromium';

export function haveChromium(): boolean {
  return fs.existsSync(CHROMIUM);
}

export async function launchBrowser(): Promise<Browser> {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...(root ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    defaultViewport: { width: 1280, height: 800 },
  });
}

/** Signs in through the form; resolves on the page it lands on. */
export async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/ui/login`);
  await page.type('#token', token);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
}

/** Polls `fn` in the page until it returns true (50 ms between tries) or `timeoutMs` passes. */
export async function until(page: Page, fn: string, timeoutMs = 30_000, what = fn): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate(fn)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = path.join(REPO, 'docs/ui');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) as `${string}.png`, fullPage: false });
}
