/**
 * `kickswarm discover`: insert-ethers. Opens a discovery session in the
 * inventory; the running server registers every unknown MAC that PXE-boots (or
 * asks for a kickstart with a MAC header) as the next `<appliance>-<rack>-<rank>`
 * with the next free IP, at most `--rate` a minute and `--max-pending` awaiting
 * approval. A registered node gets no kickstart until an admin approves it
 * (`kickswarm node approve NAME...`), unless `--auto-approve`. This command
 * lists the nodes already awaiting approval, prints each registration as it
 * happens and closes the session when it exits (Ctrl-C, --count or --timeout).
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { type Ipv4, intToIpv4, ipv4ToInt, parseIpv4, parseSimpleName } from '../../protocol/node.js';
import type { Inventory } from '../inventory/store.js';
import { DISCOVERY_DEFAULTS, type DiscoverySession } from '../inventory/types.js';
import type { CliContext, CommandModule } from './context.js';

/** The first IP handed out when `--first-ip` is not given: one past the highest registered IP, else 10.1.1.1. */
export function defaultFirstIp(inv: Inventory): Ipv4 {
  const ips = inv.listNodes().map((n) => ipv4ToInt(n.ip));
  return ips.length ? intToIpv4(Math.max(...ips) + 1) : ('10.1.1.1' as Ipv4);
}

export const registerDiscoverCommand: CommandModule = (program: Command, ctx: CliContext) => {
  program
    .command('discover')
    .description('register unknown nodes as they PXE-boot (insert-ethers); a running `kickswarm serve` does the registering')
    .option('--appliance <appliance>', 'appliance for new nodes', 'compute')
    .option('--rack <n>', 'rack number for new nodes', '0')
    .option('--first-ip <ip>', 'first IP to hand out (default: one past the highest registered)')
    .option('--count <n>', 'stop after this many nodes')
    .option('--timeout <seconds>', 'stop after this many seconds')
    .option('--auto-approve', 'discovered nodes get their kickstart at once (default: they wait for `kickswarm node approve`)')
    .option('--max-pending <n>', `most nodes awaiting approval at once (default ${DISCOVERY_DEFAULTS.maxPending})`)
    .option('--rate <n>', `most registrations a minute (default ${DISCOVERY_DEFAULTS.perMinute})`)
    .option('--stop', 'close a discovery session left open')
    .action(async (o: { appliance: string; rack: string; firstIp?: string; count?: string; timeout?: string; stop?: boolean; autoApprove?: boolean; maxPending?: string; rate?: string }) => {
      const inv = ctx.inventory();
      if (o.stop) {
        inv.setDiscovery(null);
        return ctx.out('discovery stopped');
      }
      if (!/^\d{1,4}$/.test(o.rack)) throw new InvalidInputError(`--rack must be a whole number, not ${JSON.stringify(o.rack)}`);
      const limit = (flag: string, v: string | undefined): number | undefined => {
        if (v === undefined) return undefined;
        if (!/^\d{1,6}$/.test(v) || Number(v) < 1) throw new InvalidInputError(`${flag} must be a whole number of at least 1, not ${JSON.stringify(v)}`);
        return Number(v);
      };
      const maxPending = limit('--max-pending', o.maxPending);
      const perMinute = limit('--rate', o.rate);
      const count = o.count === undefined ? Infinity : Number(o.count);
      const timeout = o.timeout === undefined ? Infinity : Number(o.timeout);
      if (!(count > 0) || !(timeout > 0)) throw new InvalidInputError('--count and --timeout must be positive numbers');
      const existing = inv.getDiscovery();
      if (existing) {
        throw new InvalidInputError(`a discovery session for ${existing.appliance} rack ${existing.rack} is already open since ${existing.startedAt} (close it with \`kickswarm discover --stop\`)`);
      }
      const session: DiscoverySession = {
        appliance: parseSimpleName(o.appliance, 'appliance'),
        rack: Number(o.rack),
        firstIp: o.firstIp ? parseIpv4(o.firstIp) : defaultFirstIp(inv),
        startedAt: new Date().toISOString(),
        autoApprove: o.autoApprove === true,
        ...(maxPending !== undefined ? { maxPending } : {}),
        ...(perMinute !== undefined ? { perMinute } : {}),
      };
      // The event cursor is read before the session opens, so a node that registers
      // at once (before the prompt below is printed) is still reported.
      let after = inv.lastEventId();
      inv.setDiscovery(session);
      const waiting = inv.listNodes().filter((n) => n.pending);
      if (waiting.length > 0) ctx.out(`awaiting approval: ${waiting.map((n) => `${n.name} (mac ${n.mac})`).join(', ')}`);
      const how = session.autoApprove ? 'approved at once (--auto-approve)' : 'each waits for `kickswarm node approve NAME`';
      ctx.out(`discovering ${session.appliance} nodes in rack ${session.rack}, IPs from ${session.firstIp}, ${how}; power on the nodes now (Ctrl-C to stop)`);
      let seen = 0;
      const started = Date.now();
      await new Promise<void>((resolve) => {
        const stop = () => {
          clearInterval(timer);
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        const timer = setInterval(() => {
          for (const e of inv.eventsSince(after, 'discover')) {
            after = e.id;
            if (e.data?.mac === undefined) continue; // an approval, not a registration
            seen++;
            const wait = e.data?.pending === true ? `; awaiting approval: kickswarm node approve ${e.node}` : '';
            ctx.out(`discovered ${e.node}: mac ${String(e.data?.mac)} ip ${String(e.data?.ip)} (via ${String(e.data?.via)})${wait}`);
          }
          if (seen >= count || Date.now() - started >= timeout * 1000) stop();
        }, 250);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      const current = inv.getDiscovery();
      if (current && current.startedAt === session.startedAt) inv.setDiscovery(null);
      ctx.out(`discovery closed: ${seen} node(s) registered`);
    });
};
