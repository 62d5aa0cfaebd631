/**
 * Bulk add/update of nodes (`kickswarm node import`): a file's rows are
 * checked as a whole against each other and the inventory, and either all of
 * them are applied in one transaction or none is.
 *
 * A row is a set of columns (name, mac, ip, appliance, rack, rank, uuid,
 * attr.KEY). Its `name` says which node it is: an unknown name adds a node
 * (mac and ip required; appliance defaults to compute), a known one updates
 * it. A column a row leaves out leaves that field of an existing node alone;
 * an empty value clears rack, rank, uuid or the attribute, and is a problem
 * for name, mac, ip and appliance. MACs, IPs and UUIDs must be unique in the
 * inventory as it will be after the import, so nodes may swap addresses in
 * one file. Every problem is reported with its row, column and reason.
 */
import { InvalidInputError } from '../../protocol/errors.js';
import { type Ipv4, type Mac, type NodeName, parseAttrKey, parseIpv4, parseMac, parseNodeName, parseSimpleName, parseUuid } from '../../protocol/node.js';
import type { NodeRecord } from './types.js';

/** The columns of the import/export format, in export order (attributes follow as `attr.KEY`). */
export const NODE_COLUMNS = ['name', 'mac', 'ip', 'appliance', 'rack', 'rank', 'uuid'] as const;
export type NodeColumn = (typeof NODE_COLUMNS)[number];
export const ATTR_PREFIX = 'attr.';
export const DEFAULT_APPLIANCE = 'compute';

/** One row as read from a file: raw string values by column, and where it came from. */
export interface ImportRow {
  /** 1-based data row (CSV: not counting the header; YAML: the item's index); 0: the header or the file as a whole. */
  row: number;
  /** 1-based line in the file where the row starts, when known. */
  line?: number;
  values: Map<string, string>;
}

export interface ImportProblem {
  row: number;
  line?: number;
  /** The column at fault (undefined: the row as a whole). */
  column?: string;
  reason: string;
}

/** What a valid import will do. */
export interface ImportPlan {
  add: NodeRecord[];
  /** Existing nodes with their new values (only nodes that change). */
  update: { before: NodeRecord; after: NodeRecord }[];
  unchanged: number;
}

/** Thrown when a file has problems; nothing was written. */
export class ImportProblemsError extends InvalidInputError {
  constructor(readonly problems: ImportProblem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} found; nothing was imported`, { problems: problems.length });
  }
}

/** Checks that a column name is one of the format's; returns a reason when not. */
export function columnProblem(column: string): string | undefined {
  if ((NODE_COLUMNS as readonly string[]).includes(column)) return undefined;
  if (column.startsWith(ATTR_PREFIX)) {
    try {
      parseAttrKey(column.slice(ATTR_PREFIX.length));
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }
  return `unknown column (want ${NODE_COLUMNS.join(', ')} or ${ATTR_PREFIX}KEY)`;
}

function wholeNumber(v: string, what: string): number {
  if (!/^\d{1,6}$/.test(v.trim())) throw new InvalidInputError(`${what} must be a whole number, not ${JSON.stringify(v.slice(0, 40))}`);
  return Number(v.trim());
}

/** Parses one row over `base` (the existing node, or a new node's defaults); pushes problems. */
function applyRow(r: ImportRow, base: NodeRecord | undefined, name: NodeName, stamp: string, problems: ImportProblem[]): NodeRecord | undefined {
  const next: NodeRecord = base
    ? { ...base, attrs: { ...base.attrs } }
    : { name, mac: '' as Mac, ip: '' as Ipv4, uuid: null, appliance: DEFAULT_APPLIANCE, rack: null, rank: null, attrs: {}, bootAction: 'os', install: null, createdAt: stamp, updatedAt: stamp };
  const before = problems.length;
  const bad = (column: string, reason: string) => problems.push({ row: r.row, line: r.line, column, reason });
  for (const [column, raw] of r.values) {
    const v = raw.trim();
    try {
      if (column === 'name') continue;
      if (column.startsWith(ATTR_PREFIX)) {
        const key = column.slice(ATTR_PREFIX.length);
        if (raw === '') delete next.attrs[key];
        else next.attrs[key] = raw;
        continue;
      }
      const required = column === 'mac' || column === 'ip' || column === 'appliance';
      if (v === '' && required) {
        bad(column, `${column} cannot be empty`);
        continue;
      }
      if (column === 'mac') next.mac = parseMac(v);
      else if (column === 'ip') next.ip = parseIpv4(v);
      else if (column === 'appliance') next.appliance = parseSimpleName(v, 'appliance');
      else if (column === 'rack') next.rack = v === '' ? null : wholeNumber(v, 'rack');
      else if (column === 'rank') next.rank = v === '' ? null : wholeNumber(v, 'rank');
      else if (column === 'uuid') next.uuid = v === '' ? null : parseUuid(v);
    } catch (e) {
      bad(column, (e as Error).message);
    }
  }
  if (!base) {
    if (!r.values.has('mac')) bad('mac', 'a new node needs a MAC address');
    if (!r.values.has('ip')) bad('ip', 'a new node needs an IP address');
  }
  return problems.length === before ? next : undefined;
}

function sameNode(a: NodeRecord, b: NodeRecord): boolean {
  if (a.mac !== b.mac || a.ip !== b.ip || a.uuid !== b.uuid || a.appliance !== b.appliance || a.rack !== b.rack || a.rank !== b.rank) return false;
  const ka = Object.keys(a.attrs);
  return ka.length === Object.keys(b.attrs).length && ka.every((k) => b.attrs[k] === a.attrs[k]);
}

/**
 * Checks every row against the others and `existing`; returns the plan, or
 * throws ImportProblemsError listing every problem (sorted by row).
 */
export function planImport(rows: ImportRow[], existing: NodeRecord[], stamp: string): ImportPlan {
  const problems: ImportProblem[] = [];
  const byName = new Map(existing.map((n) => [n.name as string, n]));
  const seen = new Map<string, ImportRow>();
  const final = new Map<string, { node: NodeRecord; row?: ImportRow }>(existing.map((n) => [n.name as string, { node: n }]));
  const plan: ImportPlan = { add: [], update: [], unchanged: 0 };
  for (const r of rows) {
    const rawName = r.values.get('name');
    if (rawName === undefined || rawName.trim() === '') {
      problems.push({ row: r.row, line: r.line, column: 'name', reason: 'every row needs a node name' });
      continue;
    }
    let name: NodeName;
    try {
      name = parseNodeName(rawName);
    } catch (e) {
      problems.push({ row: r.row, line: r.line, column: 'name', reason: (e as Error).message });
      continue;
    }
    const dup = seen.get(name);
    if (dup) {
      problems.push({ row: r.row, line: r.line, column: 'name', reason: `node ${name} is also on row ${dup.row}` });
      continue;
    }
    seen.set(name, r);
    const base = byName.get(name);
    const next = applyRow(r, base, name, stamp, problems);
    if (!next) continue;
    final.set(name, { node: next, row: r });
    if (!base) plan.add.push(next);
    else if (sameNode(base, next)) plan.unchanged++;
    else plan.update.push({ before: base, after: { ...next, updatedAt: stamp } });
  }
  // Uniqueness in the inventory as it will be: reported on the file's rows that claim a taken value.
  for (const [column, key] of [
    ['mac', (n: NodeRecord) => n.mac],
    ['ip', (n: NodeRecord) => n.ip],
    ['uuid', (n: NodeRecord) => n.uuid],
  ] as const) {
    const owners = new Map<string, { node: NodeRecord; row?: ImportRow }[]>();
    for (const f of final.values()) {
      const v = key(f.node);
      if (!v) continue;
      const list = owners.get(v);
      if (list) list.push(f);
      else owners.set(v, [f]);
    }
    for (const [value, list] of owners) {
      if (list.length < 2) continue;
      for (const f of list) {
        if (!f.row) continue;
        const others = list.filter((o) => o !== f).map((o) => (o.row ? `${o.node.name} (row ${o.row.row})` : `${o.node.name} (in the inventory)`));
        problems.push({ row: f.row.row, line: f.row.line, column, reason: `${column === 'ip' ? 'IP' : column.toUpperCase()} ${value} also belongs to node ${others.join(', ')}` });
      }
    }
  }
  if (problems.length) throw new ImportProblemsError(problems.sort((a, b) => a.row - b.row));
  return plan;
}

/** One problem as a line: `FILE:LINE: row N, column C: reason` (no row for the header or the file as a whole). */
export function formatProblem(file: string, p: ImportProblem): string {
  const where = [p.row > 0 ? `row ${p.row}` : '', p.column ? `column ${p.column}` : ''].filter(Boolean).join(', ');
  return `${file}${p.line !== undefined ? `:${p.line}` : ''}: ${where ? `${where}: ` : ''}${p.reason}`;
}
