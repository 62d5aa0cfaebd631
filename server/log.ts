/** The frontend's structured logger (pino); parts receive a child tagged with their subsystem. */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string = 'info', dest?: pino.DestinationStream): Logger {
  return pino({ level, base: { app: 'kickswarm' } }, dest ?? pino.destination(2));
}

/** A logger that drops everything (tests, one-shot CLI commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
