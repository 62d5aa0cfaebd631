/** The installer's structured logger (pino), injected into every part. */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string = process.env.KICKSWARM_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { app: 'kickswarm-install' } }, pino.destination(2));
}
