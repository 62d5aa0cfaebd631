/**
 * `kickswarm serve` in a process of its own, so a load generator never shares
 * its event loop, with its CPU seconds and RSS from /proc (Linux only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { processCpuSeconds, processCpuTimes, processRssMb } from './proc.js';

/** The repository root (holds server/main.ts and node_modules/tsx). */
export const REPO_ROOT = new URL('../..', import.meta.url).pathname;

export interface FrontendProcessOptions {
  dataDir: string;
  /** HTTP port (0 = any free one, read back from the server's banner). */
  httpPort?: number;
  /** TFTP port (0 = any free one). */
  tftpPort?: number;
  logLevel?: string;
  /** Extra node flags, e.g. `--cpu-prof`, `--cpu-prof-dir=D`. */
  nodeFlags?: string[];
  /** Modules (TypeScript welcome) imported after tsx and before the server. */
  imports?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Milliseconds to wait for the banner before giving up (default 60 s). */
  startTimeoutMs?: number;
}

export interface FrontendProcess {
  pid: number;
  httpPort: number;
  tftpPort: number;
  url: string;
  /** user + system CPU seconds the process has used so far. */
  cpuSeconds(): number;
  /** The same, split. */
  cpuTimes(): { user: number; system: number };
  /** Current and peak resident set size in MiB. */
  rssMb(): { now: number; peak: number };
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `node --import tsx server/main.ts --data-dir D serve --listen 127.0.0.1`
 * and resolves once its banner names the bound ports. Its stderr passes
 * through (prefixed), except the shutdown notice.
 */
export function startFrontendProcess(o: FrontendProcessOptions): Promise<FrontendProcess> {
  const args = [
    ...(o.nodeFlags ?? []),
    '--import',
    'tsx',
    ...(o.imports ?? []).flatMap((m) => ['--import', m]),
    join(REPO_ROOT, 'server/main.ts'),
    '--data-dir',
    o.dataDir,
    'serve',
    '--listen',
    '127.0.0.1',
    '--http-port',
    String(o.httpPort ?? 0),
    '--tftp-port',
    String(o.tftpPort ?? 0),
    '--log-level',
    o.logLevel ?? 'warn',
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (!/^kickswarm: shutting down/.test(line)) process.stderr.write(`[frontend] ${line}\n`);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<FrontendProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`frontend did not start within ${o.startTimeoutMs ?? 60_000} ms`));
    }, o.startTimeoutMs ?? 60_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`frontend exited with ${code} before it was serving`));
    };
    child.once('exit', onExit);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const m = /^kickswarm serving (\S+) \(HTTP (\d+), TFTP (\d+)\)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(handle(child, exited, m[1]!, Number(m[2]), Number(m[3])));
    });
  });
}

function handle(child: ChildProcess, exited: Promise<void>, url: string, httpPort: number, tftpPort: number): FrontendProcess {
  const pid = child.pid!;
  let stopping: Promise<void> | undefined;
  return {
    pid,
    httpPort,
    tftpPort,
    url,
    cpuSeconds: () => processCpuSeconds(pid),
    cpuTimes: () => processCpuTimes(pid),
    rssMb: () => processRssMb(pid),
    stop(graceMs = 15_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}
