/**
 * `kickswarm node add|list|show|get|set|remove|approve` and `kickswarm boot set`.
 * Secret attributes (../inventory/secret-attrs.ts) are shown masked; `node get`
 * and `node show --show-secrets` print them.
 */
import type { Command } from 'commander';
import { InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { parseAttrAssignment, parseAttrKey, parseBootAction, parseIpv4, parseMac, parseNodeName, parseSimpleName, parseUuid } from '../../protocol/node.js';
import { MASK, maskAttrs } from '../inventory/secret-attrs.js';
import type { NodeRecord, NodeSelector } from '../inventory/types.js';
import type { CliContext, CommandModule } from './context.js';
import { json, table } from './format.js';
import { registerNodeFileCommands } from './node-file.js';

function parseIntOption(what: string) {
  return (v: string): number => {
    if (!/^\d{1,6}$/.test(v)) throw new InvalidInputError(`${what} must be a whole number, not ${JSON.stringify(v)}`);
    return Number(v);
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** The JSON shape of a node in `--json` output; secret attribute values masked unless `showSecrets`. */
export function nodeJson(n: NodeRecord, showSecrets = false): Record<string, unknown> {
  return { ...n, attrs: showSecrets ? n.attrs : maskAttrs(n.attrs), pending: n.pending === true };
}

/** Turns `NAME... | --all | --appliance A` into a selector; exactly one form is allowed. */
export function selectorFrom(names: string[], opts: { all?: boolean; appliance?: string }): NodeSelector {
  const forms = [names.length > 0, Boolean(opts.all), opts.appliance !== undefined].filter(Boolean).length;
  if (forms !== 1) throw new InvalidInputError('name the nodes: NAME..., --all or --appliance A (exactly one)');
  if (opts.all) return { all: true };
  if (opts.appliance !== undefined) return { appliance: parseSimpleName(opts.appliance, 'appliance') };
  return { names: names.map(parseNodeName) };
}

function showNode(ctx: CliContext, n: NodeRecord, showSecrets: boolean): string {
  const inv = ctx.inventory();
  const attrs = showSecrets ? n.attrs : maskAttrs(n.attrs);
  const hidden = Object.keys(attrs).filter((k) => attrs[k] !== n.attrs[k]);
  const lines = [
    `name:        ${n.name}`,
    `mac:         ${n.mac}`,
    `ip:          ${n.ip}`,
    `appliance:   ${n.appliance}`,
    `rack/rank:   ${n.rack ?? '-'}/${n.rank ?? '-'}`,
    `uuid:        ${n.uuid ?? '-'}`,
    `boot action: ${n.bootAction}${n.pending ? ' (awaiting approval: kickswarm node approve)' : ''}`,
    `install:     ${n.install ? `${n.install.state}${n.install.reason ? ` (${n.install.reason})` : ''} at ${n.install.updatedAt}` : '-'}`,
    `attributes:  ${Object.keys(n.attrs).length === 0 ? '-' : ''}`,
    ...Object.entries(attrs)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `  ${k} = ${v}`),
    ...(hidden.length > 0 ? [`  (${MASK}: secret; kickswarm node get ${n.name} KEY, or node show ${n.name} --show-secrets)`] : []),
    'events:',
    ...inv.events(n.name, 30).map((e) => `  ${e.at}  ${e.kind.padEnd(10)} ${e.message}`),
  ];
  return lines.join('\n');
}

export const registerNodeCommands: CommandModule = (program: Command, ctx: CliContext) => {
  const node = program.command('node').description('register, list, show and remove nodes; import and export them in bulk');
  registerNodeFileCommands(node, ctx);

  node
    .command('add')
    .description('register a node')
    .argument('<name>', 'node name, e.g. compute-0-0')
    .requiredOption('--mac <mac>', 'MAC address of the PXE interface')
    .requiredOption('--ip <ip>', 'IPv4 address')
    .option('--appliance <appliance>', 'appliance (profile) name', 'compute')
    .option('--rack <n>', 'rack number', parseIntOption('--rack'))
    .option('--rank <n>', 'rank within the rack', parseIntOption('--rank'))
    .option('--uuid <uuid>', 'SMBIOS UUID (for pxelinux.cfg/<uuid>)')
    .option('--attr <k=v>', 'node attribute (repeatable)', collect, [] as string[])
    .option('--action <action>', 'initial boot action (one of: install, os, capture)', 'os')
    .option('--json', 'print the node as JSON')
    .action((name: string, o: { mac: string; ip: string; appliance: string; rack?: number; rank?: number; uuid?: string; attr: string[]; action: string; json?: boolean }) => {
      const attrs = Object.fromEntries(o.attr.map(parseAttrAssignment));
      const rec = ctx.inventory().addNode({
        name: parseNodeName(name),
        mac: parseMac(o.mac),
        ip: parseIpv4(o.ip),
        uuid: o.uuid ? parseUuid(o.uuid) : null,
        appliance: parseSimpleName(o.appliance, 'appliance'),
        rack: o.rack ?? null,
        rank: o.rank ?? null,
        attrs,
        bootAction: parseBootAction(o.action),
      });
      ctx.out(o.json ? json(nodeJson(rec)) : `added ${rec.name} (mac ${rec.mac}, ip ${rec.ip}, appliance ${rec.appliance}, boot ${rec.bootAction})`);
    });

  node
    .command('list')
    .description('list nodes')
    .option('--appliance <appliance>', 'only this appliance')
    .option('--json', 'JSON output')
    .action((o: { appliance?: string; json?: boolean }) => {
      const nodes = ctx.inventory().listNodes(o.appliance ? { appliance: parseSimpleName(o.appliance, 'appliance') } : {});
      if (o.json) return ctx.out(json(nodes.map((n) => nodeJson(n))));
      if (nodes.length === 0) return ctx.out('no nodes (add one with `kickswarm node add NAME --mac MAC --ip IP`)');
      ctx.out(
        table(
          ['NAME', 'MAC', 'IP', 'APPLIANCE', 'RACK', 'RANK', 'BOOT', 'STATE'],
          nodes.map((n) => [n.name, n.mac, n.ip, n.appliance, String(n.rack ?? '-'), String(n.rank ?? '-'), n.bootAction, n.pending ? 'pending' : (n.install?.state ?? '-')]),
        ),
      );
      const pending = nodes.filter((n) => n.pending).length;
      if (pending > 0) ctx.out(`${pending} node(s) await approval: kickswarm node approve NAME... (or --all)`);
    });

  node
    .command('show')
    .description('show one node with its attributes and event history')
    .argument('<name>')
    .option('--json', 'JSON output')
    .option('--show-secrets', 'print secret attributes (passwords, keys, tokens) instead of masking them')
    .action((name: string, o: { json?: boolean; showSecrets?: boolean }) => {
      const n = ctx.inventory().requireNode(parseNodeName(name));
      if (o.json) return ctx.out(json({ ...nodeJson(n, o.showSecrets === true), events: ctx.inventory().events(n.name, 100) }));
      ctx.out(showNode(ctx, n, o.showSecrets === true));
    });

  node
    .command('get')
    .description('print one attribute value as it is (secrets too), for scripts')
    .argument('<name>')
    .argument('<key>', 'attribute key, e.g. bmc.password')
    .action((name: string, key: string) => {
      const n = ctx.inventory().requireNode(parseNodeName(name));
      const k = parseAttrKey(key);
      const v = n.attrs[k];
      if (v === undefined) throw new NotFoundError(`node ${n.name} has no attribute ${k}`, { node: n.name, attr: k });
      ctx.out(v);
    });

  node
    .command('remove')
    .description('remove a node and its history')
    .argument('<name>')
    .action((name: string) => {
      const n = parseNodeName(name);
      ctx.inventory().removeNode(n);
      ctx.out(`removed ${n}`);
    });

  node
    .command('approve')
    .description('approve nodes registered by discovery: they get their kickstart from now on')
    .argument('[names...]')
    .option('--all', 'every node awaiting approval')
    .option('--json', 'JSON output')
    .action((names: string[], o: { all?: boolean; json?: boolean }) => {
      const nodes = ctx.inventory().approve(selectorFrom(names, o), 'admin');
      if (o.json) return ctx.out(json(nodes.map((n) => nodeJson(n))));
      ctx.out(nodes.length === 0 ? 'no node was awaiting approval' : `approved ${nodes.length} node(s): ${nodes.map((n) => n.name).join(' ')}`);
    });

  node
    .command('set')
    .description('set or delete node attributes (k=v sets, k= deletes)')
    .argument('<name>')
    .argument('<assignments...>')
    .action((name: string, assignments: string[]) => {
      const changes = Object.fromEntries(assignments.map(parseAttrAssignment).map(([k, v]) => [k, v === '' ? null : v]));
      const n = ctx.inventory().updateAttrs(parseNodeName(name), changes);
      ctx.out(`${n.name}: ${Object.keys(changes).length} attribute(s) updated`);
    });

  const boot = program.command('boot').description('boot actions');
  boot
    .command('set')
    .description('set the boot action of nodes: install (network install), os (local disk), capture')
    .argument('[names...]')
    .option('--all', 'every node')
    .option('--appliance <appliance>', 'every node of an appliance')
    .requiredOption('--action <action>', 'boot action (one of: install, os, capture)')
    .option('--json', 'JSON output')
    .action((names: string[], o: { all?: boolean; appliance?: string; action: string; json?: boolean }) => {
      const action = parseBootAction(o.action);
      const nodes = ctx.inventory().setBootAction(selectorFrom(names, o), action, 'admin');
      if (o.json) return ctx.out(json(nodes.map((n) => ({ name: n.name, bootAction: n.bootAction }))));
      ctx.out(nodes.length === 0 ? 'no nodes matched' : `${nodes.length} node(s) set to ${action}: ${nodes.map((n) => n.name).join(' ')}`);
    });
};
