/**
 * The installer's structured logger (pino), injected into every part.
 * `KICKSWARM_LOG_FORMAT=plain` (set by the boot environment's init) writes
 * `HH:MM:SS level message key=value ...` lines a person at a console can follow
 * instead of JSON.
 */
import pino from 'pino';

export type Logger = pino.Logger;

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'app', 'msg']);

/** One pino JSON line as a plain console line. */
export function plainLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const t = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '';
  const extra = Object.entries(o)
    .filter(([k, v]) => !SKIP.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${LEVEL_NAMES[o.level as number] ?? o.level} ${String(o.msg ?? '')}${extra ? `  ${extra}` : ''}`;
}

/** Logs to stderr (plain lines with KICKSWARM_LOG_FORMAT=plain, else JSON), and as JSON to `tail` too when given (the lines that go to the frontend with progress reports). */
export function createLogger(level: string = process.env.KICKSWARM_LOG_LEVEL ?? 'info', tail?: NodeJS.WritableStream): Logger {
  const stderr: pino.DestinationStream = process.env.KICKSWARM_LOG_FORMAT === 'plain' ? { write: (s: string) => void process.stderr.write(`${plainLine(s)}\n`) } : pino.destination(2);
  if (!tail) return pino({ level, base: { app: 'kickswarm-install' } }, stderr);
  const streamLevel = (level in pino.levels.values ? level : 'info') as pino.Level;
  return pino(
    { level, base: { app: 'kickswarm-install' } },
    pino.multistream([
      { stream: stderr, level: streamLevel },
      { stream: tail, level: streamLevel },
    ]),
  );
}
