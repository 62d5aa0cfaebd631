/**
 * `kickswarm reinstall (NAME...|--all|--appliance A) [--power none|ipmi|redfish|ssh|command]
 *  [--power-command TEMPLATE] [--power-timeout S] [--parallel K] [--wait] [--timeout S] [--json]`
 *
 * Sets the boot action to `install`, clears the old install progress and
 * power-cycles the nodes at most K at a time. With `--wait` it shows live
 * progress (bars on a terminal, plain lines otherwise) until every node is
 * done or failed or the timeout passes. Exit 0 only when every node finished
 * `done` with its boot action back at `os` (without `--wait`: when every power
 * cycle succeeded); otherwise exit 1 with the failed and stalled nodes listed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { type PowerDriver, type ExecFn, createPowerDriver, parsePowerDriverName } from '../cluster/power.js';
import { type ProgressView, barView, lineView } from '../cluster/progress.js';
import { type ReinstallDeps, type ReinstallSummary, type StartedReinstall, startReinstall, waitForInstalls } from '../cluster/reinstall.js';
import type { CliContext, CommandModule } from './context.js';
import { humanBytes, humanSeconds, json, table } from './format.js';
import { selectorFrom } from './nodes.js';
import { parseSeconds } from './status.js';

export interface ReinstallOptions {
  all?: boolean;
  appliance?: string;
  power: string;
  powerCommand?: string;
  powerTimeout?: number;
  parallel: number;
  wait?: boolean;
  timeout: number;
  stalledAfter?: number;
  json?: boolean;
}

export interface ReinstallCommandDeps {
  /** Runs power commands (tests pass a fake). */
  exec?: ExecFn;
  now?: () => Date;
  sleep?: ReinstallDeps['sleep'];
  /** Time between progress reads with --wait (default 1000 ms). */
  pollMs?: number;
  /** Least time between two power cycle starts (default 250 ms). */
  staggerMs?: number;
}

function parseParallel(v: string): number {
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1) throw new InvalidInputError(`--parallel must be a whole number of at least 1, not ${JSON.stringify(v)}`);
  return Number(v);
}

const realSleep: ReinstallDeps['sleep'] = (ms, signal) => sleep(ms, undefined, { signal }).catch(() => undefined);

/** The final report: failed, stalled and pending nodes with reasons, then the counts. */
export function formatReinstallSummary(s: ReinstallSummary): string {
  const bad = s.nodes.filter((n) => n.outcome !== 'done');
  const lines: string[] = [];
  if (bad.length) {
    lines.push(
      table(
        ['NODE', 'OUTCOME', 'REASON'],
        bad.map((n) => [n.name, n.outcome, n.reason ?? '-']),
      ),
      '',
    );
  }
  const peers = s.nodes.reduce((a, n) => a + (n.row?.bytesFromPeers ?? 0), 0);
  const front = s.nodes.reduce((a, n) => a + (n.row?.bytesFromFrontend ?? 0), 0);
  const how = s.timedOut ? ' (timeout)' : s.interrupted ? ' (interrupted; the nodes keep installing)' : '';
  lines.push(
    `${s.ok ? 'reinstall complete' : 'reinstall incomplete'}${how}: ${s.counts.done} done, ${s.counts.failed} failed, ${s.counts.stalled} stalled` +
      `${s.counts.pending ? `, ${s.counts.pending} pending` : ''} of ${s.nodes.length} in ${humanSeconds(s.elapsedSeconds)}` +
      (front + peers > 0 ? `; ${humanBytes(front)} from the frontend, ${humanBytes(peers)} from peers` : ''),
  );
  if (!s.ok && s.counts.failed + s.counts.stalled > 0) lines.push('nodes that did not finish keep boot action install and reinstall on their next network boot');
  return lines.join('\n');
}

function summaryJson(started: StartedReinstall, power: PowerDriver, s: ReinstallSummary | undefined): Record<string, unknown> {
  const powerByName = new Map(started.power.map((p) => [p.name, p]));
  if (!s) {
    const ok = started.power.every((p) => p.ok);
    return {
      ok,
      power: power.name,
      waited: false,
      nodes: started.nodes.map((name) => ({ name, outcome: powerByName.get(name)?.ok === false ? 'failed' : 'started', reason: powerByName.get(name)?.error ?? null })),
    };
  }
  return {
    ok: s.ok,
    power: power.name,
    waited: true,
    timedOut: s.timedOut,
    interrupted: s.interrupted,
    elapsedSeconds: s.elapsedSeconds,
    counts: s.counts,
    nodes: s.nodes.map((n) => ({
      name: n.name,
      outcome: n.outcome,
      state: n.row?.state ?? null,
      bootAction: n.row?.bootAction ?? null,
      reason: n.reason ?? null,
      seconds: n.row?.durationSeconds ?? null,
      bytesFromFrontend: n.row?.bytesFromFrontend ?? null,
      bytesFromPeers: n.row?.bytesFromPeers ?? null,
    })),
  };
}

/** Runs one `reinstall`; sets exit code 1 unless everything succeeded. */
export async function runReinstall(ctx: CliContext, names: string[], o: ReinstallOptions, deps: ReinstallCommandDeps = {}, signal?: AbortSignal): Promise<void> {
  const power = createPowerDriver(parsePowerDriverName(o.power), { command: o.powerCommand, exec: deps.exec, timeoutMs: (o.powerTimeout ?? 60) * 1000 });
  try {
    await reinstallWith(ctx, power, names, o, deps, signal);
  } finally {
    await power.close?.();
  }
}

async function reinstallWith(ctx: CliContext, power: PowerDriver, names: string[], o: ReinstallOptions, deps: ReinstallCommandDeps, signal?: AbortSignal): Promise<void> {
  const sel = selectorFrom(names, o);
  if (o.powerCommand !== undefined && power.name !== 'command') throw new InvalidInputError('--power-command needs --power command');
  const stalledAfter = o.stalledAfter ?? ctx.config().stalledAfterSeconds;
  const inventory = ctx.inventory();
  const rdeps: ReinstallDeps = { inventory, power, now: deps.now ?? (() => new Date()), sleep: deps.sleep ?? realSleep };
  const say = o.json ? ctx.err : ctx.out;

  const started = await startReinstall(rdeps, sel, {
    parallel: o.parallel,
    staggerMs: deps.staggerMs,
    onPower: (r) => (r.ok ? undefined : ctx.err(`power: ${r.error}`)),
  });
  if (started.nodes.length === 0) {
    if (o.json) ctx.out(json({ ok: true, power: power.name, waited: false, nodes: [] }));
    else ctx.out('no nodes matched');
    return;
  }
  say(`${started.nodes.length} node(s) set to install: ${started.nodes.join(' ')}`);
  const powerFailed = started.power.filter((p) => !p.ok);
  if (power.manual) say(`power driver none: reboot these nodes now so they PXE-boot and install`);
  else say(`power: ${started.power.length - powerFailed.length} of ${started.power.length} cycled via ${power.name}${powerFailed.length ? `, ${powerFailed.length} failed` : ''}`);

  if (!o.wait) {
    if (o.json) ctx.out(json(summaryJson(started, power, undefined)));
    if (powerFailed.length) ctx.setExitCode(1);
    return;
  }

  const view: ProgressView = ctx.isTTY && !o.json ? barView() : lineView({ out: say });
  let summary: ReinstallSummary;
  try {
    summary = await waitForInstalls(rdeps, started.nodes, {
      timeoutSeconds: o.timeout,
      stalledAfterSeconds: stalledAfter,
      pollMs: deps.pollMs,
      failed: new Map(powerFailed.map((p) => [p.name, `power cycle failed: ${p.error}`])),
      onTick: (rows, elapsed) => view.update(rows, elapsed),
      signal,
    });
  } finally {
    view.stop();
  }
  if (o.json) ctx.out(json(summaryJson(started, power, summary)));
  else ctx.out(formatReinstallSummary(summary));
  if (!summary.ok) ctx.setExitCode(1);
}

/** Builds the `reinstall` module; tests inject exec, clock and sleep. */
export function reinstallCommandModule(deps: ReinstallCommandDeps = {}): CommandModule {
  return (program: Command, ctx: CliContext) => {
    program
      .command('reinstall')
      .description('reinstall nodes: boot action install, power cycle, and (--wait) watch them install')
      .argument('[names...]', 'nodes to reinstall')
      .option('--all', 'every node')
      .option('--appliance <appliance>', 'every node of an appliance')
      .option('--power <driver>', 'how to power-cycle the nodes (one of: none, ipmi, redfish, ssh, command; default: none)', 'none')
      .option('--power-command <template>', 'for --power command, e.g. "/usr/local/bin/pdu-cycle {{name}} {{ip}} {{mac}}"')
      .option('--power-timeout <seconds>', 'per power command or BMC request', parseSeconds('--power-timeout'), 60)
      .option('--parallel <k>', 'power cycles at once', parseParallel, 8)
      .option('--wait', 'show progress until every node is done or failed')
      .option('--timeout <seconds>', 'give up waiting after this long', parseSeconds('--timeout'), 3600)
      .option('--stalled-after <seconds>', 'no report for this long is stalled (default: config stalledAfterSeconds)', parseSeconds('--stalled-after'))
      .option('--json', 'print a JSON summary on stdout (progress goes to stderr)')
      .action(async (names: string[], o: ReinstallOptions) => {
        const ac = new AbortController();
        const onSignal = (): void => ac.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          await runReinstall(ctx, names, o, deps, ac.signal);
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      });
  };
}

export const registerReinstallCommand: CommandModule = reinstallCommandModule();
