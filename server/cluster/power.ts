/**
 * Power drivers: how `kickswarm reinstall` makes a node reboot into PXE.
 *
 *   none     does nothing; the admin reboots the nodes (`manual`)
 *   ipmi     ipmitool -I lanplus -H <ipmi.host> -U <ipmi.user> -E chassis power cycle
 *            (password from attribute ipmi.password, passed in IPMI_PASSWORD, never
 *            on the command line); a chassis that is off is powered on instead
 *   ssh      ssh -o BatchMode=yes -o ConnectTimeout=10 <ssh.user|root>@<ssh.host|ip> reboot
 *   command  a configured template such as `/usr/local/bin/pdu-cycle {{name}} {{ip}}`
 *
 * Every command runs without a shell (argv, not a string), with a timeout, so
 * node attributes can never inject a command. `cycle` rejects for that one node.
 */
import { splitWords, UnclosedQuoteError } from '../../protocol/words.js';
import { execFile } from 'node:child_process';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import type { NodeRecord } from '../inventory/types.js';

export const POWER_DRIVERS = ['none', 'ipmi', 'ssh', 'command'] as const;
export type PowerDriverName = (typeof POWER_DRIVERS)[number];

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

export interface PowerDriver {
  name: PowerDriverName;
  /** True when nothing is done and the admin must reboot the nodes. */
  manual: boolean;
  /** Power-cycles (or reboots) one node. */
  cycle(node: NodeRecord): Promise<void>;
}

export interface PowerOptions {
  exec?: ExecFn;
  /** Per command; default 60 s. */
  timeoutMs?: number;
  /** Template of the `command` driver. */
  command?: string;
}

/** The real ExecFn: child_process.execFile, 1 MiB of output at most, SIGKILL on timeout. */
export const defaultExec: ExecFn = (file, args, opts) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, env: { ...process.env, ...(opts.env ?? {}) }, windowsHide: true },
      (err, stdout, stderr) => {
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
      },
    );
  });

function attr(node: NodeRecord, key: string, driver: string): string {
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
function checkHost(node: NodeRecord, key: string, v: string): string {
  if (!/^[A-Za-z0-9_.:%[\]][A-Za-z0-9_.:%[\]-]*$/.test(v)) {
    throw new InvalidInputError(`node ${node.name}: attribute ${key} ${JSON.stringify(v.slice(0, 60))} is not a host name or address`, { node: node.name, attr: key });
  }
  return v;
}

function tail(s: string | undefined): string {
  const t = (s ?? '').trim().split('\n').slice(-3).join(' | ');
  return t.length > 300 ? `...${t.slice(-300)}` : t;
}

/** Turns a failed command into one UnavailableError line naming the node. */
function failure(node: NodeRecord, what: string, err: unknown): UnavailableError {
  const e = err as ExecError;
  const how = e.signal ? `killed by ${e.signal} (timeout?)` : e.exitCode !== undefined ? `exit ${e.exitCode}` : e.message;
  const out = tail(e.stderr) || tail(e.stdout);
  return new UnavailableError(`node ${node.name}: ${what} failed: ${how}${out ? `: ${out}` : ''}`, { node: node.name });
}

/** Splits a command template into words (shell-like quotes and escapes, no expansion). */
export function splitTemplate(template: string): string[] {
  try {
    return splitWords(template);
  } catch (e) {
    if (e instanceof UnclosedQuoteError) throw new InvalidInputError(`power command template has an unclosed ${e.quote}`);
    throw e;
  }
}

const TOKEN = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;
const FIXED_TOKENS = ['name', 'ip', 'mac', 'appliance', 'rack', 'rank', 'uuid'];

/** Checks that every `{{token}}` of the template is known: name ip mac appliance rack rank uuid attr.KEY. */
export function checkTemplate(template: string): string[] {
  const words = splitTemplate(template);
  if (words.length === 0) throw new InvalidInputError('power command template is empty');
  for (const w of words) {
    for (const m of w.matchAll(TOKEN)) {
      const t = m[1]!;
      if (!FIXED_TOKENS.includes(t) && !t.startsWith('attr.')) {
        throw new InvalidInputError(`power command template: unknown token {{${t}}} (want ${FIXED_TOKENS.join(', ')} or attr.KEY)`);
      }
    }
  }
  return words;
}

/** The argv of the `command` driver for `node`: tokens substituted inside each word, never splitting it. */
export function commandArgv(words: string[], node: NodeRecord): string[] {
  const value = (t: string): string => {
    if (t.startsWith('attr.')) return attr(node, t.slice(5), 'command');
    const v = { name: node.name, ip: node.ip, mac: node.mac, appliance: node.appliance, rack: node.rack, rank: node.rank, uuid: node.uuid }[t];
    if (v === null || v === undefined) throw new InvalidInputError(`node ${node.name}: power command needs {{${t}}}, which the node does not have`, { node: node.name });
    return String(v);
  };
  return words.map((w) => w.replace(TOKEN, (_m, t: string) => value(t)));
}

/** ssh ends with 255 when `reboot` takes the connection down under it; that is success. */
function rebootClosedConnection(err: unknown): boolean {
  const e = err as ExecError;
  return e.exitCode === 255 && /closed by remote host|Connection to \S+ closed|connection reset/i.test(e.stderr ?? '');
}

/** Builds a driver. The `command` driver needs `opts.command`; a bad template is an InvalidInputError here. */
export function createPowerDriver(name: PowerDriverName, opts: PowerOptions = {}): PowerDriver {
  const exec = opts.exec ?? defaultExec;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  switch (name) {
    case 'none':
      return { name, manual: true, cycle: async () => undefined };
    case 'ipmi':
      return {
        name,
        manual: false,
        async cycle(node) {
          const host = checkHost(node, 'ipmi.host', attr(node, 'ipmi.host', 'ipmi'));
          const user = attr(node, 'ipmi.user', 'ipmi');
          const password = node.attrs['ipmi.password'] ?? '';
          if (password === '') attr(node, 'ipmi.password', 'ipmi');
          const base = ['-I', 'lanplus', '-H', host, '-U', user, '-E', 'chassis', 'power'];
          const run = (verb: string) => exec('ipmitool', [...base, verb], { timeoutMs, env: { IPMI_PASSWORD: password } });
          try {
            await run('cycle');
          } catch (err) {
            const st = await run('status').catch(() => undefined);
            if (!st || !/\bis off\b/i.test(st.stdout)) throw failure(node, `ipmitool -H ${host} chassis power cycle`, err);
            await run('on').catch((e2: unknown) => {
              throw failure(node, `ipmitool -H ${host} chassis power on`, e2);
            });
          }
        },
      };
    case 'ssh':
      return {
        name,
        manual: false,
        async cycle(node) {
          const host = node.attrs['ssh.host'] ? checkHost(node, 'ssh.host', node.attrs['ssh.host'].trim()) : node.ip;
          const user = node.attrs['ssh.user']?.trim() || 'root';
          if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(user)) {
            throw new InvalidInputError(`node ${node.name}: attribute ssh.user ${JSON.stringify(user.slice(0, 40))} is not a user name`, { node: node.name, attr: 'ssh.user' });
          }
          const args = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '--', `${user}@${host}`, 'reboot'];
          try {
            await exec('ssh', args, { timeoutMs });
          } catch (err) {
            if (!rebootClosedConnection(err)) throw failure(node, `ssh ${user}@${host} reboot`, err);
          }
        },
      };
    case 'command': {
      if (!opts.command) throw new InvalidInputError('power driver command needs a template (--power-command "/path/to/cycle {{name}} {{ip}}")');
      const words = checkTemplate(opts.command);
      return {
        name,
        manual: false,
        async cycle(node) {
          const [file, ...args] = commandArgv(words, node);
          await exec(file!, args, { timeoutMs }).catch((err: unknown) => {
            throw failure(node, `${file}`, err);
          });
        },
      };
    }
    default:
      throw new InvalidInputError(`unknown power driver ${JSON.stringify(String(name))} (want ${POWER_DRIVERS.join('|')})`);
  }
}

export function parsePowerDriverName(input: string): PowerDriverName {
  const s = input.trim().toLowerCase();
  if (!(POWER_DRIVERS as readonly string[]).includes(s)) throw new InvalidInputError(`unknown power driver ${JSON.stringify(input.slice(0, 40))} (want ${POWER_DRIVERS.join('|')})`);
  return s as PowerDriverName;
}
