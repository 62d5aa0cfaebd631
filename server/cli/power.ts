/**
 * `kickswarm power status|on|off|cycle (NAME...|--all|--appliance A)
 *  [--power DRIVER] [--power-command TEMPLATE] [--timeout S] [--parallel K] [--json]`
 *
 * Day-to-day power control through the nodes' BMCs. The driver is `--power`
 * when given, else each node's attribute `power.driver`. `cycle` is the
 * reinstall's cycle (next boot PXE, then restart) without touching the boot
 * action. One line per node; a BMC that refuses or does not answer is that
 * node's failure and the others go on. Exit 1 when any node failed.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import type { NodeRecord } from '../inventory/types.js';
import { type ExecFn, type PowerDriver, type PowerDriverName, createPowerDriver, parsePowerDriverName } from '../cluster/power.js';
import type { CliContext, CommandModule } from './context.js';
import { json, table } from './format.js';
import { selectorFrom } from './nodes.js';
import { parseSeconds } from './status.js';

export const POWER_ACTIONS = ['status', 'on', 'off', 'cycle'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

export interface PowerCommandOptions {
  all?: boolean;
  appliance?: string;
  power?: string;
  powerCommand?: string;
  timeout: number;
  parallel: number;
  json?: boolean;
}

export interface PowerResultRow {
  name: string;
  driver: string | null;
  ok: boolean;
  /** `status`: on | off | unknown; other actions: null. */
  state: string | null;
  error: string | null;
}

function parseAction(v: string): PowerAction {
  const a = v.trim().toLowerCase();
  if (!(POWER_ACTIONS as readonly string[]).includes(a)) throw new InvalidInputError(`unknown power action ${JSON.stringify(v.slice(0, 40))} (want ${POWER_ACTIONS.join('|')})`);
  return a as PowerAction;
}

function parseParallel(v: string): number {
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1) throw new InvalidInputError(`--parallel must be a whole number of at least 1, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** Runs `action` on every node, `parallel` at a time; never rejects. */
export async function runPower(ctx: CliContext, action: PowerAction, names: string[], o: PowerCommandOptions, deps: { exec?: ExecFn } = {}): Promise<PowerResultRow[]> {
  const flag = o.power !== undefined ? parsePowerDriverName(o.power) : undefined;
  if (o.powerCommand !== undefined && flag !== 'command') throw new InvalidInputError('--power-command needs --power command');
  const nodes = ctx.inventory().select(selectorFrom(names, o));
  const drivers = new Map<PowerDriverName, PowerDriver>();
  const driverFor = (node: NodeRecord): PowerDriver => {
    const name = flag ?? (node.attrs['power.driver'] !== undefined ? parsePowerDriverName(node.attrs['power.driver']) : undefined);
    if (!name) throw new InvalidInputError(`node ${node.name}: no power driver (--power DRIVER, or kickswarm node set ${node.name} power.driver=ipmi|redfish|...)`);
    let d = drivers.get(name);
    if (!d) {
      d = createPowerDriver(name, { exec: deps.exec, command: o.powerCommand, timeoutMs: o.timeout * 1000 });
      drivers.set(name, d);
    }
    return d;
  };
  const rows: PowerResultRow[] = new Array(nodes.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < nodes.length) {
      const i = next++;
      const node = nodes[i]!;
      let driver: string | null = null;
      try {
        const d = driverFor(node);
        driver = d.name;
        if (d.manual) throw new InvalidInputError(`node ${node.name}: power driver none controls nothing`);
        const state = action === 'status' ? await d.status(node) : (await d[action](node), null);
        rows[i] = { name: node.name, driver, ok: true, state, error: null };
        if (action !== 'status') ctx.inventory().recordEvent(node.name, 'power', `power ${action} (${driver})`, { driver });
      } catch (err) {
        rows[i] = { name: node.name, driver, ok: false, state: null, error: (err as Error).message };
        if (action !== 'status' && driver) ctx.inventory().recordEvent(node.name, 'power', `power ${action} failed (${driver}): ${(err as Error).message}`, { driver });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.parallel, nodes.length) }, worker));
  } finally {
    await Promise.all([...drivers.values()].map((d) => d.close?.()));
  }
  return rows;
}

export function powerCommandModule(deps: { exec?: ExecFn } = {}): CommandModule {
  return (program: Command, ctx: CliContext) => {
    program
      .command('power')
      .description("power status, on, off or cycle (next boot PXE, then restart) through the nodes' BMCs")
      .argument('<action>', POWER_ACTIONS.join(' | '))
      .argument('[names...]', 'nodes')
      .option('--all', 'every node')
      .option('--appliance <appliance>', 'every node of an appliance')
      .option('--power <driver>', "ipmi | redfish | ssh | command (default: each node's attribute power.driver)")
      .option('--power-command <template>', 'for --power command, e.g. "/usr/local/bin/pdu {{name}} {{ip}}"')
      .option('--timeout <seconds>', 'per BMC command or request', parseSeconds('--timeout'), 30)
      .option('--parallel <k>', 'nodes at once', parseParallel, 16)
      .option('--json', 'print the results as JSON')
      .action(async (actionArg: string, names: string[], o: PowerCommandOptions) => {
        const action = parseAction(actionArg);
        const rows = await runPower(ctx, action, names, o, deps);
        if (o.json) ctx.out(json(rows));
        else if (rows.length === 0) ctx.out('no nodes matched');
        else {
          ctx.out(
            table(
              ['NODE', 'DRIVER', action === 'status' ? 'STATE' : 'RESULT', 'ERROR'],
              rows.map((r) => [r.name, r.driver ?? '-', r.ok ? (r.state ?? 'ok') : 'failed', r.error ?? '']),
            ),
          );
        }
        if (rows.some((r) => !r.ok)) ctx.setExitCode(1);
      });
  };
}

export const registerPowerCommand: CommandModule = powerCommandModule();
