/** The installer's structured logger (pino), injected into every part. */
import pino from 'pino';

export type Logger = pino.Logger;

/** Logs to stderr, and to `tail` too when given (the lines that go to the frontend with progress reports). */
export function createLogger(level: string = process.env.KICKSWARM_LOG_LEVEL ?? 'info', tail?: NodeJS.WritableStream): Logger {
  const stderr = pino.destination(2);
  if (!tail) return pino({ level, base: { app: 'kickswarm-install' } }, stderr);
  const streamLevel = (level in pino.levels.values ? level : 'info') as pino.Level;
  return pino({ level, base: { app: 'kickswarm-install' } }, pino.multistream([{ stream: stderr, level: streamLevel }, { stream: tail, level: streamLevel }]));
}
