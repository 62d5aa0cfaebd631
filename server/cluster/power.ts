/**
 * Power drivers: how kickswarm turns nodes on and off, and how `reinstall`
 * makes a node reboot into PXE.
 *
 *   none     does nothing; the admin reboots the nodes (`manual`)
 *   ipmi     ipmitool lanplus to the BMC: bootdev pxe, then power cycle (./ipmi.ts)
 *   redfish  the BMC's Redfish API: boot override Pxe once, then Reset (./redfish.ts)
 *   ssh      ssh -o BatchMode=yes -o ConnectTimeout=10 <ssh.user|root>@<ssh.host|ip> reboot
 *   command  a configured template such as `/usr/local/bin/pdu-cycle {{name}} {{ip}}`
 *
 * Credentials come from node attributes and never appear on a command line or
 * in a log. Every command runs without a shell (argv, not a string), with a
 * timeout, so node attributes can never inject a command. Every operation
 * rejects for that one node only.
 */
import { InvalidInputError } from '../../protocol/errors.js';
import { POWER_DRIVERS, type PowerDriver, type PowerDriverName } from './power-types.js';
import { splitWords, UnclosedQuoteError } from '../../protocol/words.js';
import type { NodeRecord } from '../inventory/types.js';
import { ipmiDriver } from './ipmi.js';
import { type ExecFn, attr, checkHost, defaultExec, failure, type ExecError } from './power-exec.js';
import { redfishDriver } from './redfish.js';

export { defaultExec, type ExecError, type ExecFn, type ExecOptions } from './power-exec.js';

export { POWER_DRIVERS, type PowerCycler, type PowerDriver, type PowerDriverName, type PowerState } from './power-types.js';

export interface PowerOptions {
  exec?: ExecFn;
  /** Per command or HTTP request; default 60 s. */
  timeoutMs?: number;
  /** Template of the `command` driver. */
  command?: string;
}

/** The operations a driver without a BMC cannot do: one clear line naming the node. */
function cannot(name: PowerDriverName, what: string): (node: NodeRecord) => Promise<never> {
  return async (node) => {
    throw new InvalidInputError(`node ${node.name}: power driver ${name} cannot ${what} (use ipmi or redfish)`, { node: node.name });
  };
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
      return { name, manual: true, cycle: async () => undefined, status: cannot(name, 'read the power state'), on: cannot(name, 'power on'), off: cannot(name, 'power off') };
    case 'ipmi':
      return ipmiDriver({ exec, timeoutMs });
    case 'redfish':
      return redfishDriver({ timeoutMs });
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
        status: cannot(name, 'read the power state'),
        on: cannot(name, 'power on a node that is off'),
        off: cannot(name, 'power off'),
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
        status: cannot(name, 'read the power state'),
        on: cannot(name, 'power on'),
        off: cannot(name, 'power off'),
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
