/**
 * What every `kickswarm` subcommand gets: the data dir named by the global
 * `--data-dir`, the inventory and config opened lazily, and output sinks.
 * Subcommands throw KickswarmError for every failure; only `server/main.ts`
 * turns errors into exit codes (invalid_input -> 2, anything else -> 1).
 */
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import type { DataDir } from '../datadir.js';
import type { Inventory } from '../inventory/store.js';

export interface CliContext {
  /** The data dir's paths; folders and shipped profiles/templates are created on first use. */
  dataDir(): DataDir;
  /** The inventory of the data dir (opened once, closed by main at exit). */
  inventory(): Inventory;
  /** The `--config FILE` given, if any. */
  configFile(): string | undefined;
  /** The config (`--config FILE` or `<data-dir>/kickswarm.yaml`, env, embedded defaults). */
  config(overrides?: Record<string, unknown>): Config;
  /** Writes a line (or block) to stdout. */
  out(text: string): void;
  /** Writes a line to stderr. */
  err(text: string): void;
  /** Whether stdout is a terminal (progress bars vs plain lines). */
  isTTY: boolean;
  /** Sets the process exit code without throwing (e.g. `profile check` found problems). */
  setExitCode(code: number): void;
}

/** A command module registers its subcommands on the root program. */
export type CommandModule = (program: Command, ctx: CliContext) => void;
