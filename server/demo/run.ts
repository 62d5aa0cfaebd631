/**
 * `kickswarm demo`: a whole cluster reinstall on one machine with nothing to
 * prepare. A temporary data dir, a synthetic disk image, a frontend on
 * 127.0.0.1, N nodes registered at 127.0.1.x, each fetching its pxelinux
 * config over TFTP from its own address (which carries its install session
 * token), and N real `kickswarm-install run --session` processes installing
 * into file targets, each sending from its own loopback address. The summary says, per node, whether its target holds
 * exactly the image and whether its boot action flipped back to `os`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import { type Ipv4, type Mac, type NodeName } from '../../protocol/node.js';
import { PACKAGE_ROOT } from '../datadir.js';
import { Frontend } from '../frontend.js';
import type { NodeRecord } from '../inventory/types.js';
import { bootConfigOf } from './boot-config.js';
import { buildSyntheticDisk } from './disk.js';

/**
 * The demo cluster's appliance. Its %post runs on the installer (`--nochroot`)
 * and leaves the target untouched, so the demo can check every target against
 * the image byte for byte.
 */
export const DEMO_APPLIANCE = 'demo';

/**
 * The profile YAML of a simulated node (the demo's and bench:cluster's):
 * %post runs on the installer and leaves the target alone.
 */
export function simulatedNodeProfile(writtenBy: string, description: string): string {
  return `# Written by ${writtenBy}.
description: ${description}
template: kickstart.hbs
attributes:
  lang: en_US.UTF-8
  keyboard: us
  timezone: UTC
  clearpart: --all --initlabel
  bootloader: --location=mbr
packages:
  - "@core"
pre:
  - report-start
post:
  - log-install --nochroot
`;
}
const DEMO_PROFILE = simulatedNodeProfile('kickswarm demo', 'Simulated node of kickswarm demo');

export const DEMO_METHODS = ['torrent', 'http', 'multicast'] as const;
export type DemoMethod = (typeof DEMO_METHODS)[number];

export interface DemoOptions {
  nodes: number;
  method: DemoMethod;
  imageMb: number;
  /** Fraction of multicast datagrams each node drops (multicast only). */
  loss: number;
  /** Seconds nodes keep seeding after they finish. */
  linger: number;
  timeoutSeconds: number;
  /** Keep the temporary folder (data dir, targets, logs) for inspection. */
  keep: boolean;
  /** Progress lines while it runs (not with --json). */
  onProgress?: (nodes: NodeRecord[], elapsedSeconds: number) => void;
  onLine?: (line: string) => void;
  /**
   * Called once the frontend is up and the nodes are registered, before any
   * installer starts, with the dashboard's address and a one-time sign-in link.
   */
  onReady?: (info: { frontendUrl: string; dashboard: string; signIn: string }) => Promise<void> | void;
  /** After the install, keep the frontend up until this resolves (`--keep-serving`). */
  keepServing?: () => Promise<void>;
  /** With keepServing: called with the summary before the frontend keeps serving. */
  onDone?: (summary: DemoSummary) => void;
}

export interface DemoNodeResult {
  name: string;
  state: string;
  seconds: number;
  sha256Match: boolean;
  bootAction: string;
  bytesFromFrontend: number;
  bytesFromPeers: number;
  exitCode: number | null;
  reason?: string;
}

export interface DemoSummary {
  method: DemoMethod;
  nodes: DemoNodeResult[];
  makespanSeconds: number;
  imageBytes: number;
  storedBytes: number;
  frontendBytesSent: number;
  peerBytesSent: number;
  ok: boolean;
  /** Where logs and targets are, when kept. */
  workDir?: string;
}

/** How to start `kickswarm-install` with the same runtime as this process (built JS or TypeScript source). */
export function installerCommand(): string[] {
  const fromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  return fromSource ? [process.execPath, '--import', 'tsx', path.join(PACKAGE_ROOT, 'node-installer/main.ts')] : [process.execPath, path.join(PACKAGE_ROOT, 'dist/node-installer/main.js')];
}

function hashFilePrefix(file: string, bytes: number): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024);
    let at = 0;
    while (at < bytes) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export function checkDemoOptions(o: DemoOptions): void {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 250) throw new InvalidInputError('--nodes must be a whole number from 1 to 250');
  if (!(DEMO_METHODS as readonly string[]).includes(o.method)) throw new InvalidInputError(`--method must be ${DEMO_METHODS.join('|')}`);
  if (!Number.isFinite(o.imageMb) || o.imageMb < 8 || o.imageMb > 16384) throw new InvalidInputError('--image-mb must be from 8 to 16384');
  if (!(o.loss >= 0 && o.loss < 1)) throw new InvalidInputError('--loss is a fraction from 0 to below 1 (e.g. 0.05)');
  if (o.loss > 0 && o.method !== 'multicast') throw new InvalidInputError('--loss applies to --method multicast only');
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  checkDemoOptions(o);
  const say = o.onLine ?? (() => undefined);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-demo-'));
  const children: ChildProcess[] = [];
  let frontend: Frontend | undefined;
  try {
    say(`building a ${o.imageMb} MiB disk image (partition table + ext4 root)`);
    const disk = await buildSyntheticDisk(path.join(work, 'disk.raw'), o.imageMb, { name: 'demo' });
    const logFile = path.join(work, 'frontend.log');
    frontend = new Frontend({
      dataDir: path.join(work, 'data'),
      overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0, frontendUrl: undefined },
      log: pino({ level: 'info', base: { app: 'kickswarm' } }, pino.destination({ dest: logFile, sync: false })),
    });
    fs.writeFileSync(path.join(frontend.dirs.profiles, `${DEMO_APPLIANCE}.yaml`), DEMO_PROFILE);
    const meta = await frontend.images.add(disk.path, 'demo');
    fs.rmSync(disk.path);
    const addr = await frontend.start();
    say(`frontend ${addr.frontendUrl}; image demo: ${meta.rawSize} bytes raw, ${meta.storedSize} stored, sha256 ${meta.sha256.slice(0, 16)}…`);

    const inv = frontend.inventory;
    const nodes: { name: NodeName; ip: Ipv4; mac: Mac; target: string }[] = [];
    for (let i = 0; i < o.nodes; i++) {
      const name = `demo-0-${i}` as NodeName;
      const ip = `127.0.1.${i + 1}` as Ipv4;
      const mac = `52:54:00:4b:00:${(i + 1).toString(16).padStart(2, '0')}` as Mac;
      const target = path.join(work, `${name}.disk`);
      inv.addNode({ name, ip, mac, appliance: DEMO_APPLIANCE, rack: 0, rank: i, attrs: { 'image.name': 'demo', 'image.method': o.method, 'image.target': target } });
      nodes.push({ name, ip, mac, target });
    }
    inv.setBootAction({ all: true }, 'install', 'demo');
    say(`${o.nodes} node(s) registered (127.0.1.1-${o.nodes}), boot action install; each fetches its boot config over TFTP`);
    // Each node asks for its pxelinux config from its own address, as at PXE time, and takes its install session token from it.
    const sessions = new Map<string, string>();
    for (const n of nodes) {
      const cfg = await bootConfigOf({ host: '127.0.0.1', port: addr.tftpPort }, n.mac, n.ip);
      if (!cfg.session) throw new UnavailableError(`node ${n.name}: its boot config carries no install session token`);
      sessions.set(n.name, cfg.session);
    }
    say(`starting their installers (method ${o.method}), each with its install session`);

    const link = frontend.signInLink('admin');
    say(`dashboard ${link.dashboard} (one-time sign-in link: ${link.signIn})`);
    await o.onReady?.({ frontendUrl: addr.frontendUrl, ...link });

    const [cmd, ...base] = installerCommand();
    const started = Date.now();
    const exits = new Map<string, number | null>();
    const done = nodes.map(
      (n) =>
        new Promise<void>((resolve) => {
          const args = [
            ...base,
            'run',
            '--frontend',
            addr.frontendUrl,
            '--mac',
            n.mac,
            '--session',
            sessions.get(n.name)!,
            '--target',
            n.target,
            '--no-reboot',
            '--local-address',
            n.ip,
            '--linger',
            String(o.linger),
            '--deadline',
            '60',
          ];
          if (o.method === 'multicast') args.push('--multicast-interface', '127.0.0.1', ...(o.loss > 0 ? ['--multicast-loss', String(o.loss)] : []));
          const out = fs.openSync(path.join(work, `${n.name}.log`), 'w');
          const child = spawn(cmd!, args, { stdio: ['ignore', out, out], env: { ...process.env, KICKSWARM_LOG_LEVEL: 'info' } });
          children.push(child);
          child.on('exit', (code) => {
            exits.set(n.name, code);
            fs.closeSync(out);
            resolve();
          });
        }),
    );
    const ticker = setInterval(() => o.onProgress?.(inv.listNodes(), (Date.now() - started) / 1000), 500);
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), o.timeoutSeconds * 1000).unref());
    const finished = await Promise.race([Promise.all(done).then(() => 'done' as const), timeout]);
    clearInterval(ticker);
    o.onProgress?.(inv.listNodes(), (Date.now() - started) / 1000);
    if (finished === 'timeout') say(`timed out after ${o.timeoutSeconds} s`);

    const results: DemoNodeResult[] = nodes.map((n) => {
      const rec = inv.requireNode(n.name);
      const inst = rec.install;
      const sha256Match = fs.existsSync(n.target) && hashFilePrefix(n.target, meta.rawSize) === meta.sha256;
      const seconds = inst ? (Date.parse(inst.updatedAt) - Date.parse(inst.startedAt)) / 1000 : NaN;
      return {
        name: n.name,
        state: inst?.state ?? 'none',
        seconds: Number.isFinite(seconds) ? Math.round(seconds * 100) / 100 : 0,
        sha256Match,
        bootAction: rec.bootAction,
        bytesFromFrontend: inst?.bytesFromFrontend ?? 0,
        bytesFromPeers: inst?.bytesFromPeers ?? 0,
        exitCode: exits.get(n.name) ?? null,
        ...(inst?.reason && inst.state === 'failed' ? { reason: inst.reason } : {}),
      };
    });
    const swarm = await frontend.swarmNumbers();
    const seederSent = swarm.reduce((a, s) => a + s.swarmBytesSent, 0);
    const httpSent = swarm.reduce((a, s) => a + s.httpBytesSent, 0);
    const multicastSent = Object.values(frontend.multicastBytesSent()).reduce((a, b) => a + b, 0);
    const received = results.reduce((a, r) => a + r.bytesFromPeers, 0);
    const summary: DemoSummary = {
      method: o.method,
      nodes: results,
      makespanSeconds: Math.round(((Date.now() - started) / 1000) * 100) / 100,
      imageBytes: meta.rawSize,
      storedBytes: meta.storedSize,
      frontendBytesSent: seederSent + httpSent + multicastSent,
      peerBytesSent: Math.max(0, received - seederSent),
      ok: results.every((r) => r.state === 'done' && r.sha256Match && r.bootAction === 'os'),
      ...(o.keep ? { workDir: work } : {}),
    };
    if (o.keepServing) {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      const again = frontend.signInLink('admin');
      o.onDone?.(summary);
      say(`the frontend keeps serving: dashboard ${again.dashboard} (new one-time sign-in link: ${again.signIn}); Ctrl-C stops it`);
      await o.keepServing();
    }
    return summary;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await frontend?.close();
    if (!o.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}
