/** Runs the `kickswarm` and `kickswarm-install` CLIs from source in a child process, as a user would. */
import { type ChildProcessByStdio, type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { installerCommand } from '../../server/demo/run.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(REPO, 'server/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kickswarm --data-dir DIR args...` and waits for it. */
export function kickswarm(dataDir: string, args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, '--data-dir', dataDir, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `kickswarm --data-dir DIR args...` in the background. */
export function kickswarmSpawn(dataDir: string, args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, '--data-dir', dataDir, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs `kickswarm --data-dir DIR args...` without blocking this process (for servers the test runs in-process). */
export function kickswarmAsync(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return collect(kickswarmSpawn(dataDir, args, env));
}

/** Runs `kickswarm-install args...` (as the demo starts it) without blocking this process. */
export function kickswarmInstallAsync(args: string[]): Promise<CliResult> {
  const [cmd, ...base] = installerCommand();
  return collect(spawn(cmd!, [...base, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Collects a child's output until it ends (killed after two minutes). */
function collect(child: ChildProcessWithoutNullStreams | ChildProcessByStdio<null, Readable, Readable>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
