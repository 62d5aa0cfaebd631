/**
 * Running a power command: argv only (never a shell), a timeout, bounded output,
 * and failures turned into one line that names the node. Shared by the drivers
 * that shell out (ipmitool, ssh, a site's command).
 */
import { execFile } from 'node:child_process';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import type { NodeRecord } from '../inventory/types.js';

export interface ExecOptions {
  timeoutMs: number;
  /** Extra environment on top of the process's own. */
  env?: Record<string, string>;
}

/** Runs `file` with `args` (no shell). Rejects with an ExecError when it fails, times out or exits non-zero. */
export type ExecFn = (file: string, args: string[], opts: ExecOptions) => Promise<{ stdout: string; stderr: string }>;

export interface ExecError extends Error {
  /** Exit code, when the command exited. */
  exitCode?: number;
  /** Set when the command was killed (timeout). */
  signal?: string;
  stdout?: string;
  stderr?: string;
}

/** The real ExecFn: child_process.execFile, 1 MiB of output at most, SIGKILL on timeout. */
export const defaultExec: ExecFn = (file, args, opts) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, env: { ...process.env, ...(opts.env ?? {}) }, windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const e = err as ExecError & { code?: unknown; killed?: boolean };
      reject(
        Object.assign(new Error(e.message), {
          exitCode: typeof e.code === 'number' ? e.code : undefined,
          signal: e.signal ?? undefined,
          stdout,
          stderr,
          cause: typeof e.code === 'string' ? e.code : undefined,
        }) as ExecError,
      );
    });
  });

export function attr(node: NodeRecord, key: string, driver: string): string {
  const v = node.attrs[key];
  if (v === undefined || v.trim() === '') {
    throw new InvalidInputError(`node ${node.name}: power driver ${driver} needs attribute ${key} (kickswarm node set ${node.name} ${key}=...)`, {
      node: node.name,
      attr: key,
    });
  }
  return v.trim();
}

/** Host names and addresses as given to ssh and ipmitool: no spaces, no leading dash. */
export function checkHost(node: NodeRecord, key: string, v: string): string {
  if (!/^[A-Za-z0-9_.:%[\]][A-Za-z0-9_.:%[\]-]*$/.test(v)) {
    throw new InvalidInputError(`node ${node.name}: attribute ${key} ${JSON.stringify(v.slice(0, 60))} is not a host name or address`, { node: node.name, attr: key });
  }
  return v;
}

export function tail(s: string | undefined): string {
  const t = (s ?? '').trim().split('\n').slice(-3).join(' | ');
  return t.length > 300 ? `...${t.slice(-300)}` : t;
}

/** Turns a failed command into one UnavailableError line naming the node. */
export function failure(node: NodeRecord, what: string, err: unknown): UnavailableError {
  const e = err as ExecError;
  const how = e.signal ? `killed by ${e.signal} (timeout?)` : e.exitCode !== undefined ? `exit ${e.exitCode}` : e.message;
  const out = tail(e.stderr) || tail(e.stdout);
  return new UnavailableError(`node ${node.name}: ${what} failed: ${how}${out ? `: ${out}` : ''}`, { node: node.name });
}
