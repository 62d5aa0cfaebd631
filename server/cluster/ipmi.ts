/**
 * The `ipmi` power driver: ipmitool over IPMI 2.0 (lanplus) to the node's BMC.
 *
 * Node attributes: `ipmi.host` (BMC address), `ipmi.user`, `ipmi.password`
 * (handed to ipmitool in IPMI_PASSWORD with `-E`, never on a command line or in
 * a log), optional `ipmi.port` (default 623).
 *
 * `cycle` is what a reinstall needs: `chassis bootdev pxe` (the next boot only,
 * as the IPMI boot flags are valid for one boot), then `chassis power cycle`;
 * a chassis that is off refuses a cycle, so it is powered on instead.
 */
import { InvalidInputError } from '../../protocol/errors.js';
import type { NodeRecord } from '../inventory/types.js';
import { type ExecFn, attr, checkHost, failure } from './power-exec.js';
import type { PowerDriver, PowerState } from './power-types.js';

export interface IpmiOptions {
  exec: ExecFn;
  /** Whole ipmitool command, ms; its own per-try timeout and retries are derived from it. */
  timeoutMs: number;
}

interface Target {
  host: string;
  args: string[];
  env: Record<string, string>;
}

function target(node: NodeRecord, timeoutMs: number): Target {
  const host = checkHost(node, 'ipmi.host', attr(node, 'ipmi.host', 'ipmi'));
  const user = attr(node, 'ipmi.user', 'ipmi');
  const password = node.attrs['ipmi.password'] ?? '';
  if (password === '') attr(node, 'ipmi.password', 'ipmi');
  const port = node.attrs['ipmi.port']?.trim();
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    throw new InvalidInputError(`node ${node.name}: attribute ipmi.port ${JSON.stringify(port.slice(0, 20))} is not a port number`, { node: node.name, attr: 'ipmi.port' });
  }
  // ipmitool retries a silent BMC on its own: fit its tries into the timeout.
  const perTry = Math.max(1, Math.min(10, Math.floor(timeoutMs / 1000 / 3)));
  const args = ['-I', 'lanplus', '-H', host, ...(port ? ['-p', port] : []), '-U', user, '-E', '-N', String(perTry), '-R', '2'];
  return { host, args, env: { IPMI_PASSWORD: password } };
}

export function ipmiDriver(o: IpmiOptions): PowerDriver {
  const run = async (node: NodeRecord, t: Target, words: string[]): Promise<string> => {
    try {
      return (await o.exec('ipmitool', [...t.args, ...words], { timeoutMs: o.timeoutMs, env: t.env })).stdout;
    } catch (err) {
      throw failure(node, `ipmitool -H ${t.host} ${words.join(' ')}`, err);
    }
  };
  const status = async (node: NodeRecord, t: Target): Promise<PowerState> => {
    const out = await run(node, t, ['chassis', 'power', 'status']);
    return /\bis on\b/i.test(out) ? 'on' : /\bis off\b/i.test(out) ? 'off' : 'unknown';
  };
  return {
    name: 'ipmi',
    manual: false,
    async cycle(node) {
      const t = target(node, o.timeoutMs);
      await run(node, t, ['chassis', 'bootdev', 'pxe']);
      const state = await status(node, t);
      await run(node, t, ['chassis', 'power', state === 'off' ? 'on' : 'cycle']);
    },
    status: (node) => status(node, target(node, o.timeoutMs)),
    async on(node) {
      await run(node, target(node, o.timeoutMs), ['chassis', 'power', 'on']);
    },
    async off(node) {
      await run(node, target(node, o.timeoutMs), ['chassis', 'power', 'off']);
    },
  };
}
