/**
 * The frontend's structured logger (pino); parts receive a child tagged with
 * their subsystem (`part`). Two formats: `json` (one JSON object per line, for
 * journald, files and log shippers) and `pretty` (human lines through
 * pino-pretty: time, level, part, message, then the fields). `auto` picks
 * pretty when the destination is a terminal, else JSON. Both write
 * synchronously, so nothing is lost when the process exits.
 */
import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

import { maskAttrs } from './inventory/secret-attrs.js';
import type { LogFormat } from './log-formats.js';

export { LOG_FORMATS, type LogFormat } from './log-formats.js';

export interface LoggerOptions {
  /** Default `auto`. */
  format?: LogFormat;
  /** File descriptor written to (default 2, stderr); ignored when `dest` is given. */
  fd?: number;
  /** A stream to write JSON lines to instead (tests). */
  dest?: pino.DestinationStream;
}

/** Whether `auto` means pretty for file descriptor `fd`. */
export function prettyByDefault(fd = 2): boolean {
  return fd === 2 ? Boolean(process.stderr.isTTY) : fd === 1 ? Boolean(process.stdout.isTTY) : false;
}

/**
 * Node attributes in a log line (a node record, or its `attrs`, logged whole
 * or one level down) have their secret values masked by the inventory's rule.
 * Nothing logs them today; this keeps it so.
 */
const REDACT = {
  paths: ['attrs', '*.attrs', '*.*.attrs'],
  censor: (value: unknown): unknown => (value && typeof value === 'object' && !Array.isArray(value) ? maskAttrs(value as Record<string, string>) : value),
};

export function createLogger(level: string = 'info', opts: LoggerOptions = {}): Logger {
  const base = { level, base: { app: 'kickswarm' }, redact: REDACT };
  if (opts.dest) return pino(base, opts.dest);
  const fd = opts.fd ?? 2;
  const format = opts.format ?? 'auto';
  if (format === 'pretty' || (format === 'auto' && prettyByDefault(fd))) {
    const stream = pretty({
      destination: fd,
      sync: true,
      colorize: prettyByDefault(fd),
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      ignore: 'pid,hostname,app,part,subsystem',
      messageFormat: (log, messageKey) => `${typeof log.part === 'string' ? `[${log.part}] ` : ''}${String(log[messageKey] ?? '')}`,
      singleLine: true,
    });
    return pino(base, stream);
  }
  return pino(base, pino.destination({ fd, sync: true }));
}

/** A logger that drops everything (tests, one-shot CLI commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
