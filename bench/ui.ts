/**
 * `npm run bench:ui [-- --nodes N] [--runs R]`: the dashboard's fleet page in
 * Debian's chromium with N nodes (default 10,000) in the inventory, a third of
 * them mid-install, some done, some failed. For each run a fresh browser
 * context signs in and opens /ui/: time to first contentful paint, time until
 * the whole table is in the DOM (the page's `fleet-table-complete` mark), and
 * the bytes on the wire (encoded body bytes of every response until then),
 * cold (empty cache) and warm (assets cached), and the CPU seconds of the
 * process holding the frontend (it also runs the puppeteer driver) from
 * navigation to the full table. Prints medians.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Frontend } from '../server/frontend.js';
import type { InstallProgress } from '../server/inventory/types.js';
import { CHROMIUM, launchBrowser } from '../test/helpers/browser.js';
import { benchNode } from './lib/seed.js';
import { median, positiveInt, round } from './lib/stats.js';

function flag(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const nodes = positiveInt('--nodes', flag('--nodes', '10000'), 200_000);
const runs = positiveInt('--runs', flag('--runs', '5'), 100);

function progress(i: number, at: string): InstallProgress | null {
  const k = i % 10;
  if (k < 3) return null;
  if (k < 6) return { state: 'done', bytesDone: 2 ** 31, bytesTotal: 2 ** 31, bytesFromPeers: 2 ** 31 - 1e6, bytesFromFrontend: 1e6, startedAt: at, updatedAt: at };
  if (k === 6 && i % 50 === 6) return { state: 'failed', reason: 'write: ENOSPC: no space left on device, write', startedAt: at, updatedAt: at };
  return { state: 'downloading', bytesDone: (i * 7919) % 2 ** 31, bytesTotal: 2 ** 31, rate: 80e6, bytesFromPeers: (i * 3001) % 2 ** 30, bytesFromFrontend: 1e6, startedAt: at, updatedAt: at };
}

async function main(): Promise<void> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install chromium)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-bench-ui-'));
  const fe = new Frontend({ dataDir: dir, overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0 }, log: pino({ level: 'silent' }) });
  const browser = await launchBrowser();
  try {
    await fe.start();
    const at = new Date().toISOString();
    const t0 = Date.now();
    for (let i = 0; i < nodes; i++) {
      const n = benchNode(i, '10.1.0.1');
      fe.inventory.addNode({ ...n, appliance: 'compute', rack: Math.floor(i / 250), rank: i % 250 });
      const p = progress(i, at);
      if (p) fe.inventory.setInstall(n.name, p);
    }
    console.log(`${nodes} nodes in the inventory (${((Date.now() - t0) / 1000).toFixed(1)} s to add)`);
    const results: Record<'cold' | 'warm', { fcp: number; table: number; bytes: number; rows: number; dom: number; cpu: number }[]> = { cold: [], warm: [] };
    for (let r = 0; r < runs; r++) {
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      await page.goto(fe.signInLink().signIn);
      await page.waitForFunction('document.body.dataset.fleetReady', { timeout: 60_000 });
      for (const mode of ['cold', 'warm'] as const) {
        const cdp = await page.createCDPSession();
        await cdp.send('Network.enable');
        if (mode === 'cold') await cdp.send('Network.clearBrowserCache');
        let bytes = 0;
        cdp.on('Network.dataReceived', (e: { encodedDataLength: number }) => (bytes += e.encodedDataLength));
        cdp.on('Network.responseReceived', (e: { response: { encodedDataLength?: number } }) => (bytes += e.response.encodedDataLength ?? 0));
        const cpu0 = process.cpuUsage();
        await page.goto(`${fe.url}/ui/`, { waitUntil: 'domcontentloaded' });
        await page.waitForFunction('document.body.dataset.fleetReady', { timeout: 60_000, polling: 10 });
        const m = (await page.evaluate(`(() => {
          const fcp = performance.getEntriesByName('first-contentful-paint')[0];
          const t = performance.getEntriesByName('fleet-table-complete')[0];
          return { fcp: fcp ? fcp.startTime : -1, table: t ? t.startTime : -1, rows: Number(document.body.dataset.fleetReady), dom: document.querySelectorAll('#fleet-body tr:not(.spacer)').length };
        })()`)) as { fcp: number; table: number; rows: number; dom: number };
        const c = process.cpuUsage(cpu0);
        results[mode].push({ ...m, bytes, cpu: (c.user + c.system) / 1e6 });
        await cdp.detach();
      }
      await ctx.close();
    }
    for (const mode of ['cold', 'warm'] as const) {
      const rs = results[mode];
      console.log(
        `${mode}: first contentful paint ${round(median(rs.map((x) => x.fcp)), 0)} ms, full table ${round(median(rs.map((x) => x.table)), 0)} ms ` +
          `(${rs[0]!.rows} rows loaded, ${rs[0]!.dom} in the DOM), ${round(median(rs.map((x) => x.bytes)) / 1024, 0)} KiB on the wire, ${round(median(rs.map((x) => x.cpu)), 2)} CPU-s in the frontend process (median of ${rs.length}; table ms per run: ${rs.map((x) => Math.round(x.table)).join(', ')})`,
      );
    }
  } finally {
    await browser.close();
    await fe.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
