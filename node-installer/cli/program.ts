/**
 * The `kickswarm-install` command tree. Every subcommand lives in its own module
 * under `cli/` and registers itself here; errors propagate to `main.ts`.
 */
import { Command } from 'commander';
import type { InstallCliContext, InstallCommandModule } from './context.js';
import { registerProxyCommand } from './proxy.js';
import { registerRunCommand } from './run.js';
import { registerCaptureCommand } from './capture.js';
import { HELP_CONFIG } from '../../protocol/cli-help.js';
import { packageVersion } from '../version.js';

export const COMMAND_MODULES: InstallCommandModule[] = [registerRunCommand, registerProxyCommand, registerCaptureCommand];

export function buildProgram(ctx: InstallCliContext): Command {
  const program = new Command('kickswarm-install')
    .description('the node side of kickswarm: install proxy, image fetch, install run')
    .version(packageVersion(), '--version', 'print the version and exit')
    .configureHelp(HELP_CONFIG)
    .exitOverride();
  for (const m of COMMAND_MODULES) m(program, ctx);
  for (const c of program.commands) c.exitOverride();
  return program;
}
