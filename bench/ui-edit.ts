/**
 * `npm run bench:ui-edit [-- --nodes N] [--runs R]`: what the dashboard's
 * template editor and reinstall plan cost with N nodes (default 10,000) in the
 * inventory, and whether they hold up other requests. For each of
 *
 *   preview  POST /api/v1/templates/preview (the edited kickstart template,
 *            unchanged, previewed for one node; `profile check` of every node)
 *   save     PUT  /api/v1/templates/file (the same text saved: every node
 *            checked against the files before and after)
 *   plan     POST /api/v1/reinstall/plan {all: true}
 *
 * it prints the median time to the answer and, from a cheap request
 * (`GET /api/v1/profiles/status`) sent every 20 ms meanwhile by a worker
 * thread (its own event loop, so a busy frontend cannot hold the clock), the
 * slowest answer to it: how long the frontend stopped answering anything else.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { API_PROFILES_STATUS_PATH } from '../protocol/api.js';
import { Frontend } from '../server/frontend.js';
import { API_REINSTALL_PLAN_PATH } from '../server/http/routes/reinstall-api.js';
import { API_TEMPLATE_FILE_PATH, API_TEMPLATE_PREVIEW_PATH } from '../server/http/routes/templates-api.js';
import { benchNode } from './lib/seed.js';
import { median, positiveInt, round } from './lib/stats.js';

function flag(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const nodes = positiveInt('--nodes', flag('--nodes', '10000'), 200_000);
const runs = positiveInt('--runs', flag('--runs', '3'), 100);
const TEMPLATE = 'templates/kickstart.hbs';

/** The probe: GET every 20 ms until told to stop; posts 'ready' once the first answer came, then the slowest answer's ms. */
const PROBE = `
const { parentPort, workerData } = require('node:worker_threads');
let stop = false, worst = 0, first = true, errors = 0;
parentPort.on('message', () => (stop = true));
(async () => {
  while (!stop) {
    const t = performance.now();
    try {
      const res = await fetch(workerData.url, { headers: { authorization: 'Bearer ' + workerData.token } });
      await res.arrayBuffer();
    } catch (e) {
      errors++;
    }
    if (first) { first = false; parentPort.postMessage('ready'); } else worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  }
  parentPort.postMessage(worst);
  if (errors) console.error('probe: ' + errors + ' request(s) failed (connection reset)');
})();
`;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-bench-ui-edit-'));
  const fe = new Frontend({ dataDir: dir, overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0 }, log: pino({ level: 'silent' }) });
  try {
    await fe.start();
    for (let i = 0; i < nodes; i++) {
      const n = benchNode(i, '10.1.0.1');
      fe.inventory.addNode({ ...n, appliance: 'compute', rack: Math.floor(i / 250), rank: i % 250, attrs: { 'bmc.password': `pw-${i}` } });
    }
    const token = fs.readFileSync(path.join(dir, 'api-token'), 'utf8').trim();
    const text = fs.readFileSync(path.join(dir, TEMPLATE), 'utf8');
    const first = benchNode(0, '10.1.0.1').name;
    const call = async (method: string, p: string, body?: unknown): Promise<number> => {
      const res = await fetch(`${fe.url}${p}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      await res.arrayBuffer();
      return res.status;
    };
    const cases: [string, () => Promise<number>][] = [
      ['preview', () => call('POST', API_TEMPLATE_PREVIEW_PATH, { path: TEMPLATE, text, node: first })],
      ['save', () => call('PUT', API_TEMPLATE_FILE_PATH, { path: TEMPLATE, text })],
      ['plan', () => call('POST', API_REINSTALL_PLAN_PATH, { all: true })],
    ];
    console.log(`${nodes} nodes; median of ${runs}`);
    for (const [name, run] of cases) {
      const took: number[] = [];
      const stalls: number[] = [];
      for (let r = 0; r < runs; r++) {
        const probe = new Worker(PROBE, { eval: true, workerData: { url: `${fe.url}${API_PROFILES_STATUS_PATH}`, token } });
        await new Promise((res) => probe.once('message', res));
        const t0 = performance.now();
        const status = await run();
        took.push(performance.now() - t0);
        const worst = new Promise<number>((res) => probe.once('message', res));
        probe.postMessage('stop');
        stalls.push(await worst);
        await probe.terminate();
        if (status >= 300) throw new Error(`${name} answered ${status}`);
      }
      console.log(
        `${name}: ${round(median(took), 0)} ms to the answer; other requests waited up to ${round(median(stalls), 0)} ms (per run: ${took.map((x) => Math.round(x)).join(', ')} ms; waits ${stalls.map((x) => Math.round(x)).join(', ')} ms)`,
      );
    }
  } finally {
    await fe.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
