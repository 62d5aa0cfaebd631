/**
 * A frontend in this process plus nodes on 127.0.1.x whose installers run as
 * real `kickswarm-install run` processes, for end-to-end tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Ipv4, Mac, NodeName } from '../../protocol/node.js';
import { installerCommand } from '../../server/demo/run.js';
import { bootConfigOf } from '../../server/demo/boot-config.js';
import { buildSyntheticDisk } from '../../server/demo/disk.js';
import { Frontend } from '../../server/frontend.js';
import { tmpDir } from './tmp.js';

export interface TestNode {
  name: NodeName;
  ip: Ipv4;
  mac: Mac;
  target: string;
  log: string;
}

/** How a test starts one `kickswarm-install run`. */
export interface InstallerOptions {
  /** `--linger` seconds (default 1); 'default' passes none, so the installer's own default applies. */
  linger?: number | 'default';
  /** `--deadline` seconds (default 60). */
  deadlineSeconds?: number;
  /** Rewrites the command line (e.g. to run it inside a memory cgroup). */
  wrap?: (argv: string[]) => string[];
  /** The child's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** A running installer and its exit code once it ends. */
export interface InstallerRun {
  child: ChildProcess;
  exited: Promise<number | null>;
}

export class TestCluster {
  readonly dir = tmpDir('kickswarm-e2e-');
  frontend!: Frontend;
  nodes: TestNode[] = [];
  imageSha = '';
  imageRawSize = 0;
  tftpPort = 0;
  private readonly children = new Set<ChildProcess>();

  /** Starts a frontend (port 0 unless given) on a fresh or existing data dir. */
  async startFrontend(overrides: Record<string, unknown> = {}): Promise<string> {
    this.frontend = new Frontend({
      dataDir: path.join(this.dir, 'data'),
      overrides: { listen: '127.0.0.1', httpPort: 0, tftpPort: 0, ...overrides },
      log: pino({ level: process.env.KICKSWARM_TEST_LOG ?? 'silent' }),
    });
    const a = await this.frontend.start();
    this.tftpPort = a.tftpPort;
    return a.frontendUrl;
  }

  /** Adds a synthetic image of `mb` MiB to the (not yet started) frontend's store. */
  async addImage(name: string, mb: number): Promise<void> {
    const raw = path.join(this.dir, `${name}.raw`);
    await buildSyntheticDisk(raw, mb, { name });
    const meta = await this.frontend.images.add(raw, name);
    fs.rmSync(raw);
    this.imageSha = meta.sha256;
    this.imageRawSize = meta.rawSize;
  }

  /** Writes a profile into the data dir (hot-reloaded by a running frontend). */
  writeProfile(name: string, yaml: string): void {
    fs.writeFileSync(path.join(this.frontend.dirs.profiles, `${name}.yaml`), yaml);
  }

  addNodes(n: number, appliance: string, attrs: Record<string, string>, firstIndex = 0): TestNode[] {
    const made: TestNode[] = [];
    for (let i = firstIndex; i < firstIndex + n; i++) {
      const name = `node-0-${i}` as NodeName;
      const node: TestNode = {
        name,
        ip: `127.0.1.${i + 1}` as Ipv4,
        mac: `52:54:00:7e:00:${(i + 1).toString(16).padStart(2, '0')}` as Mac,
        target: path.join(this.dir, `${name}.disk`),
        log: path.join(this.dir, `${name}.log`),
      };
      this.frontend.inventory.addNode({ name, ip: node.ip, mac: node.mac, appliance, rack: 0, rank: i, attrs: { 'image.target': node.target, ...attrs } });
      made.push(node);
    }
    this.frontend.inventory.setBootAction({ names: made.map((m) => m.name) }, 'install');
    this.nodes.push(...made);
    return made;
  }

  /** The node's install session token, from the boot config it gets over TFTP from its own address. */
  async sessionOf(node: TestNode): Promise<string> {
    const cfg = await bootConfigOf({ host: '127.0.0.1', port: this.tftpPort }, node.mac, node.ip);
    if (!cfg.session) throw new Error(`${node.name}: no kickswarm.session= in its boot config:\n${cfg.text}`);
    return cfg.session;
  }

  /**
   * Starts `kickswarm-install run --session` for a node, with the token from its
   * boot config; resolves with its exit code when it ends.
   */
  async install(node: TestNode, extra: string[] = [], opts: InstallerOptions = {}): Promise<InstallerRun> {
    const session = await this.sessionOf(node);
    return this.installWith(node, ['--session', session, ...extra], opts);
  }

  /** Starts `kickswarm-install run` for a node with exactly `extra` added (no session unless given); output goes to its log. */
  installWith(node: TestNode, extra: string[] = [], opts: InstallerOptions = {}): InstallerRun {
    const linger = opts.linger === undefined ? ['--linger', '1'] : opts.linger === 'default' ? [] : ['--linger', String(opts.linger)];
    const argv = (opts.wrap ?? ((a: string[]) => a))([
      ...installerCommand(),
      'run', '--frontend', this.frontend.url, '--mac', node.mac, '--target', node.target, '--no-reboot',
      '--local-address', node.ip, ...linger, '--deadline', String(opts.deadlineSeconds ?? 60), ...extra,
    ]); // prettier-ignore
    const out = fs.openSync(node.log, 'a');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', out, out], ...(opts.env ? { env: opts.env } : {}) });
    fs.closeSync(out);
    this.children.add(child);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    void exited.then(() => this.children.delete(child));
    return { child, exited };
  }

  logOf(node: TestNode): string {
    return fs.existsSync(node.log) ? fs.readFileSync(node.log, 'utf8') : '';
  }

  /** Kills every installer it started and waits for them to exit, then closes the frontend. */
  async close(): Promise<void> {
    const running = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    const gone = running.map((c) => new Promise((resolve) => c.once('exit', resolve)));
    for (const c of running) c.kill('SIGKILL');
    await Promise.all(gone);
    await this.frontend?.close();
  }
}
