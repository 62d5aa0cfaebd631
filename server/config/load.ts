/** Loads and validates the configuration; every error names its source and field. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { InvalidInputError } from '../../protocol/errors.js';
import { type Config, ConfigSchema } from './schema.js';

export const CONFIG_FILE = 'kickswarm.yaml';

/** `KICKSWARM_*` variables that map onto config fields. */
const ENV_FIELDS: Record<string, (v: string) => Record<string, unknown>> = {
  KICKSWARM_LISTEN: (v) => ({ listen: v }),
  KICKSWARM_HTTP_PORT: (v) => ({ httpPort: Number(v) }),
  KICKSWARM_TFTP_PORT: (v) => ({ tftpPort: Number(v) }),
  KICKSWARM_TFTP_ROOT: (v) => ({ tftpRoot: v }),
  KICKSWARM_FRONTEND_URL: (v) => ({ frontendUrl: v }),
  KICKSWARM_ADVERTISE_ADDRESS: (v) => ({ advertiseAddress: v }),
  KICKSWARM_LOG_LEVEL: (v) => ({ logLevel: v }),
  KICKSWARM_LOG_FORMAT: (v) => ({ logFormat: v }),
};

function formatIssues(source: string, err: { issues: { path: PropertyKey[]; message: string }[] }): string {
  return err.issues.map((i) => `${source}: ${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Reads `configFile` (or `<dataDir>/kickswarm.yaml` when it exists), then the
 * environment, then `overrides`, and validates the result.
 */
export function loadConfig(opts: { dataDir: string; configFile?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> }): Config {
  const file = opts.configFile ?? path.join(opts.dataDir, CONFIG_FILE);
  let fromFile: Record<string, unknown> = {};
  if (fs.existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = YAML.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new InvalidInputError(`${file}: ${(e as Error).message}`);
    }
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new InvalidInputError(`${file}: expected a mapping of settings`);
    }
    fromFile = (parsed as Record<string, unknown>) ?? {};
  } else if (opts.configFile) {
    throw new InvalidInputError(`config file ${file} does not exist`);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(ENV_FIELDS)) {
    const v = (opts.env ?? process.env)[k];
    if (v !== undefined && v !== '') Object.assign(fromEnv, f(v));
  }
  const merged = { ...fromFile, ...fromEnv, ...stripUndefined(opts.overrides ?? {}) };
  const res = ConfigSchema.safeParse(merged);
  if (!res.success) throw new InvalidInputError(formatIssues(fs.existsSync(file) ? file : 'config', res.error));
  return res.data;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** The address nodes reach this frontend on. */
export function advertiseAddress(cfg: Config): string {
  if (cfg.advertiseAddress) return cfg.advertiseAddress;
  if (cfg.listen !== '0.0.0.0' && cfg.listen !== '::') return cfg.listen;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** The URL nodes use for this frontend (no trailing slash); `httpPort` is the port actually bound. */
export function frontendUrl(cfg: Config, httpPort = cfg.httpPort): string {
  if (cfg.frontendUrl) return cfg.frontendUrl.replace(/\/+$/, '');
  return `http://${advertiseAddress(cfg)}:${httpPort}`;
}
