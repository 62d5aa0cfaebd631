/**
 * The installer's recent log lines, kept to go to the frontend with the next
 * progress report (so an admin can see why a node failed without a console).
 * A pino destination: each JSON record becomes one readable line
 * (`HH:MM:SS LEVEL message key=value ...`). Bounded: beyond `max` waiting
 * lines the oldest are dropped and a note says how many.
 */
import { Writable } from 'node:stream';
import { MAX_LOG_LINE_CHARS, MAX_REPORT_LOG_LINES } from '../../protocol/install.js';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'app']);

/** One pino JSON record as a readable line. */
export function formatRecord(json: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trim();
  }
  const t = typeof r.time === 'number' ? new Date(r.time).toISOString().slice(11, 19) : '';
  const level = LEVELS[r.level as number] ?? String(r.level ?? '');
  const extra = Object.entries(r)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${level} ${String(r.msg ?? '')}${extra ? ` ${extra}` : ''}`.slice(0, MAX_LOG_LINE_CHARS);
}

export class LogTail extends Writable {
  private lines: string[] = [];
  private dropped = 0;
  private partial = '';

  constructor(private readonly max = MAX_REPORT_LOG_LINES) {
    super();
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    const text = this.partial + chunk.toString();
    const parts = text.split('\n');
    this.partial = (parts.pop() ?? '').slice(0, 64 * 1024);
    for (const p of parts) if (p.trim()) this.push1(formatRecord(p));
    cb();
  }

  private push1(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max - 1) {
      this.lines.shift();
      this.dropped++;
    }
  }

  /** The lines waiting since the last drain (and a note of any dropped), oldest first. */
  drain(): string[] {
    const out = this.dropped ? [`(${this.dropped} earlier log lines dropped)`, ...this.lines] : this.lines;
    this.lines = [];
    this.dropped = 0;
    return out;
  }
}
