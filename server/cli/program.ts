/**
 * The `kickswarm` command tree. Every subcommand lives in its own module and
 * registers itself here; errors propagate to `server/main.ts`.
 */
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { type DataDir, ensureDataDir, resolveDataDir } from '../datadir.js';
import { Inventory } from '../inventory/store.js';
import type { CliContext, CommandModule } from './context.js';
import { registerDiscoverCommand } from './discover.js';
import { registerNodeCommands } from './nodes.js';
import { registerServeCommand } from './serve.js';
import { registerDemoCommand } from './demo.js';
import { registerReinstallCommand } from './reinstall.js';
import { registerPowerCommand } from './power.js';
import { registerStatusCommand } from './status.js';
import { imageCommandModule } from './image.js';
import { imageUsage, profileCommand } from './profile.js';
import { dhcpCommand } from './dhcp.js';
import { bootenvCommand } from './bootenv.js';
import { registerSystemdCommand } from './systemd.js';
import { tokenCommand } from './token.js';
import { HELP_CONFIG } from '../../protocol/cli-help.js';
import { packageVersion } from '../datadir.js';

export const COMMAND_MODULES: CommandModule[] = [
  registerServeCommand,
  registerNodeCommands,
  registerDiscoverCommand,
  imageCommandModule({ usage: imageUsage }),
  profileCommand,
  dhcpCommand,
  registerReinstallCommand,
  registerPowerCommand,
  registerStatusCommand,
  registerDemoCommand,
  registerSystemdCommand,
  tokenCommand,
  bootenvCommand,
];

export interface Program {
  program: Command;
  /** Closes what the commands opened (the inventory). Idempotent. */
  close(): void;
}

export function buildProgram(io: { out: (s: string) => void; err: (s: string) => void; isTTY: boolean; setExitCode: (c: number) => void }): Program {
  const program = new Command('kickswarm')
    .description('reinstall whole clusters from one frontend')
    .option('--data-dir <dir>', 'data dir (default: $KICKSWARM_DATA_DIR, else ./kickswarm-data)')
    .option('--config <file>', 'config file (default: <data-dir>/kickswarm.yaml)')
    .version(packageVersion(), '--version', 'print the version and exit')
    .configureHelp(HELP_CONFIG)
    .showHelpAfterError()
    .exitOverride();
  let dd: DataDir | undefined;
  let inv: Inventory | undefined;
  const globals = () => program.opts<{ dataDir?: string; config?: string }>();
  const ctx: CliContext = {
    dataDir() {
      dd ??= ensureDataDir(resolveDataDir(globals().dataDir));
      return dd;
    },
    inventory() {
      inv ??= new Inventory(ctx.dataDir().db, { sessionTtlSeconds: sessionTtl(ctx) });
      return inv;
    },
    configFile() {
      return globals().config;
    },
    config(overrides?: Record<string, unknown>): Config {
      return loadConfig({ dataDir: ctx.dataDir().root, configFile: globals().config, overrides });
    },
    out: io.out,
    err: io.err,
    isTTY: io.isTTY,
    setExitCode: io.setExitCode,
  };
  for (const m of COMMAND_MODULES) m(program, ctx);
  for (const c of program.commands) c.exitOverride();
  return {
    program,
    close() {
      inv?.close();
      inv = undefined;
    },
  };
}

/** `sessions.ttlSeconds` for the install sessions `boot set` and friends open; the default when the config does not load. */
function sessionTtl(ctx: CliContext): number | undefined {
  try {
    return ctx.config().sessions.ttlSeconds;
  } catch {
    return undefined;
  }
}
