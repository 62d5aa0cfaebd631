/**
 * What every `kickswarm-install` subcommand gets. Subcommands throw
 * KickswarmError for every failure; only `node-installer/main.ts` turns errors
 * into exit codes (invalid_input -> 2, anything else -> 1).
 */
import type { Command } from 'commander';

export interface InstallCliContext {
  /** Writes a line to stdout. */
  out(text: string): void;
  /** Writes a line to stderr. */
  err(text: string): void;
  /** Resolves on the first SIGINT or SIGTERM. */
  interrupted(): Promise<string>;
}

/** A command module registers its subcommand on the root program. */
export type InstallCommandModule = (program: Command, ctx: InstallCliContext) => void;
