/** The log formats `serve --log-format` and the config's `logFormat` accept (see ./log.ts); a module of its own so the CLI can check the flag without loading the logger. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
