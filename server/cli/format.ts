/** Plain-text tables and sizes for CLI output. */

/** Left-aligned columns separated by two spaces; `rows` are already strings. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export { humanBytes, humanSeconds } from '../units.js';

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
