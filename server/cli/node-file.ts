/**
 * `kickswarm node import FILE [--dry-run]` and `kickswarm node export`: the
 * inventory as a CSV or YAML file, the same format both ways.
 *
 * CSV: a header row naming the columns (name, mac, ip, appliance, rack, rank,
 * uuid, attr.KEY...), then one node per row. YAML: `nodes:` followed by a
 * list of mappings with the same keys, attributes under `attributes:`; every
 * value is read as a string (an `007` stays `007`). The rules of what a row
 * adds, updates or clears are in ../inventory/bulk.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { createRequire } from 'node:module';
import type * as CsvParse from 'csv-parse/sync';
import type * as CsvStringify from 'csv-stringify/sync';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, stringify as stringifyYaml } from 'yaml';
import { InvalidInputError } from '../../protocol/errors.js';
import { parseSimpleName } from '../../protocol/node.js';
import { ATTR_PREFIX, type ImportProblem, ImportProblemsError, type ImportRow, NODE_COLUMNS, columnProblem, formatProblem } from '../inventory/bulk.js';
import type { NodeRecord } from '../inventory/types.js';
import type { CliContext } from './context.js';
import { json } from './format.js';

/** The CSV libraries, loaded when a CSV file is read or written (not by every command). */
const lazy = createRequire(import.meta.url);

export const NODE_FILE_FORMATS = ['csv', 'yaml'] as const;
export type NodeFileFormat = (typeof NODE_FILE_FORMATS)[number];

function parseFormat(v: string): NodeFileFormat {
  if (!(NODE_FILE_FORMATS as readonly string[]).includes(v)) throw new InvalidInputError(`--format must be one of ${NODE_FILE_FORMATS.join(', ')}, not ${JSON.stringify(v)}`);
  return v as NodeFileFormat;
}

/** The format a file name implies (.csv, .yaml, .yml), if any. */
export function formatOfFile(file: string): NodeFileFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
}

/** Reads CSV rows; header and syntax problems throw ImportProblemsError. */
export function readCsv(text: string): ImportRow[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = (lazy('csv-parse/sync') as typeof CsvParse).parse(text, { bom: true, skip_empty_lines: true, info: true, relax_column_count: false }) as never;
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new ImportProblemsError([{ row: 0, line: err.lines, reason: `not valid CSV: ${err.message}` }]);
  }
  if (records.length === 0) throw new ImportProblemsError([{ row: 0, line: 1, reason: 'no header row (want name,mac,ip,...)' }]);
  const header = records[0]!.record.map((h) => h.trim());
  const problems: ImportProblem[] = [];
  header.forEach((h, i) => {
    const why = columnProblem(h);
    if (why) problems.push({ row: 0, line: 1, column: h || `#${i + 1}`, reason: why });
    else if (header.indexOf(h) !== i) problems.push({ row: 0, line: 1, column: h, reason: 'column named twice' });
  });
  if (!header.includes('name')) problems.push({ row: 0, line: 1, reason: 'the header has no name column' });
  if (problems.length) throw new ImportProblemsError(problems);
  return records.slice(1).map(({ record, info }, i) => ({ row: i + 1, line: info.lines, values: new Map(header.map((h, c) => [h, record[c] ?? ''])) }));
}

/** Reads YAML rows (`nodes:` list, or a bare list); structural problems throw ImportProblemsError. */
export function readYaml(text: string): ImportRow[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lc, prettyErrors: false });
  const lineOf = (node: { range?: [number, number, number] | null } | null | undefined) => (node?.range ? lc.linePos(node.range[0]).line : undefined);
  if (doc.errors.length) {
    throw new ImportProblemsError(doc.errors.map((e) => ({ row: 0, line: e.linePos?.[0].line, reason: `not valid YAML: ${e.message.split('\n')[0]}` })));
  }
  const top: unknown = doc.contents;
  const list: unknown = isMap(top) ? top.get('nodes', true) : top;
  if (!isSeq(list)) throw new ImportProblemsError([{ row: 0, line: 1, reason: 'want a list of nodes under `nodes:`' }]);
  const problems: ImportProblem[] = [];
  const rows: ImportRow[] = [];
  list.items.forEach((item, i) => {
    const row = i + 1;
    const line = lineOf(item as never);
    if (!isMap(item)) {
      problems.push({ row, line, reason: 'each node is a mapping (name: ..., mac: ..., ip: ...)' });
      return;
    }
    const values = new Map<string, string>();
    for (const pair of item.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const value = pair.value;
      if (key === 'attributes') {
        if (value === null || (isScalar(value) && (value.value === null || value.value === ''))) continue;
        if (!isMap(value)) {
          problems.push({ row, line, column: 'attributes', reason: 'attributes is a mapping of key: value' });
          continue;
        }
        for (const a of value.items) {
          const column = `${ATTR_PREFIX}${isScalar(a.key) ? String(a.key.value) : ''}`;
          const why = columnProblem(column);
          if (why) problems.push({ row, line: lineOf(a.key as never) ?? line, column, reason: why });
          else if (a.value !== null && !isScalar(a.value)) problems.push({ row, line, column, reason: 'an attribute value is a single string' });
          else values.set(column, a.value === null || a.value.value === null ? '' : String(a.value.value));
        }
        continue;
      }
      const why = (NODE_COLUMNS as readonly string[]).includes(key) ? undefined : `unknown key (want ${NODE_COLUMNS.join(', ')} or attributes)`;
      if (why) problems.push({ row, line: lineOf(pair.key as never) ?? line, column: key, reason: why });
      else if (value !== null && !isScalar(value)) problems.push({ row, line, column: key, reason: `${key} is a single value` });
      else values.set(key, value === null || value.value === null ? '' : String(value.value));
    }
    rows.push({ row, line, values });
  });
  if (problems.length) throw new ImportProblemsError(problems);
  return rows;
}

function attrKeys(nodes: NodeRecord[]): string[] {
  return [...new Set(nodes.flatMap((n) => Object.keys(n.attrs)))].sort();
}

/** The nodes in the import format. */
export function writeNodes(nodes: NodeRecord[], format: NodeFileFormat): string {
  if (format === 'csv') {
    const keys = attrKeys(nodes);
    const header = [...NODE_COLUMNS, ...keys.map((k) => ATTR_PREFIX + k)];
    const rows = nodes.map((n) => [n.name, n.mac, n.ip, n.appliance, n.rack ?? '', n.rank ?? '', n.uuid ?? '', ...keys.map((k) => n.attrs[k] ?? '')].map(String));
    return (lazy('csv-stringify/sync') as typeof CsvStringify).stringify([header, ...rows]);
  }
  const list = nodes.map((n) => {
    const o: Record<string, unknown> = { name: n.name, mac: n.mac, ip: n.ip, appliance: n.appliance };
    if (n.rack !== null) o.rack = n.rack;
    if (n.rank !== null) o.rank = n.rank;
    if (n.uuid !== null) o.uuid = n.uuid;
    const keys = Object.keys(n.attrs).sort();
    if (keys.length) o.attributes = Object.fromEntries(keys.map((k) => [k, n.attrs[k]]));
    return o;
  });
  return stringifyYaml({ nodes: list });
}

export function registerNodeFileCommands(node: Command, ctx: CliContext): void {
  node
    .command('import')
    .description('add and update nodes from a CSV or YAML file: checked whole, then all applied in one transaction or none')
    .argument('<file>', 'FILE.csv or FILE.yaml (columns: name, mac, ip, appliance, rack, rank, uuid, attr.KEY)')
    .option('--format <format>', 'file format (one of: csv, yaml; default: from the file name)', parseFormat)
    .option('--dry-run', 'check the file and say what would change; write nothing')
    .option('--json', 'print the outcome as JSON')
    .action((file: string, o: { format?: NodeFileFormat; dryRun?: boolean; json?: boolean }) => {
      const format = o.format ?? formatOfFile(file);
      if (!format) throw new InvalidInputError(`cannot tell the format of ${file}: name it .csv or .yaml, or give --format`);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new InvalidInputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      let plan;
      try {
        const rows = format === 'csv' ? readCsv(text) : readYaml(text);
        plan = ctx.inventory().importNodes(rows, { dryRun: o.dryRun });
      } catch (e) {
        if (!(e instanceof ImportProblemsError)) throw e;
        for (const p of e.problems) ctx.err(formatProblem(file, p));
        throw new InvalidInputError(`${file}: ${e.message}`);
      }
      const summary = { file, dryRun: Boolean(o.dryRun), added: plan.add.map((n) => n.name), updated: plan.update.map((u) => u.after.name), unchanged: plan.unchanged };
      if (o.json) return ctx.out(json(summary));
      const counts = `${plan.add.length} added, ${plan.update.length} updated, ${plan.unchanged} unchanged`;
      ctx.out(o.dryRun ? `${file} is valid: ${plan.add.length} to add, ${plan.update.length} to update, ${plan.unchanged} unchanged (dry run: nothing was written)` : `imported ${file}: ${counts}`);
    });

  node
    .command('export')
    .description('print the inventory in the format `node import` reads')
    .option('--format <format>', 'file format (one of: csv, yaml)', parseFormat, 'csv' as NodeFileFormat)
    .option('--appliance <appliance>', 'only this appliance')
    .action((o: { format: NodeFileFormat; appliance?: string }) => {
      const nodes = ctx.inventory().listNodes(o.appliance ? { appliance: parseSimpleName(o.appliance, 'appliance') } : {});
      ctx.out(writeNodes(nodes, o.format));
    });
}
