/**
 * `kickswarm systemd-unit`: prints a systemd service unit for `kickswarm
 * serve` with the paths of this installation (the Node.js binary running now,
 * this package's bin/kickswarm.js).
 *
 * Type=simple: serve does not speak sd_notify. It fails fast instead (one
 * line, exit 1, within a second) and Restart=on-failure brings it back. It
 * runs as an unprivileged user; AmbientCapabilities=CAP_NET_BIND_SERVICE lets
 * it bind TFTP port 69 (and HTTP 80 if asked) without root.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { PACKAGE_ROOT } from '../datadir.js';
import type { CliContext, CommandModule } from './context.js';

export interface UnitOptions {
  node: string;
  cli: string;
  dataDir: string;
  user: string;
  configFile?: string;
  /** Extra `serve` arguments, already validated. */
  serveArgs: string[];
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\$])/g, '\\$1').replace(/%/g, '%%')}"`;
}

/** The unit file text. */
export function systemdUnit(o: UnitOptions): string {
  const exec = [o.node, o.cli, '--data-dir', o.dataDir, ...(o.configFile ? ['--config', o.configFile] : []), 'serve', ...o.serveArgs].map(quote).join(' ');
  const underVarLib = o.dataDir.startsWith('/var/lib/') && !o.dataDir.slice('/var/lib/'.length).includes('/');
  return `# kickswarm frontend. Install: see docs/operations.md ("Running it as a service").
[Unit]
Description=kickswarm cluster install frontend (PXE/TFTP, kickstarts, image swarm)
Documentation=file://${path.join(PACKAGE_ROOT, 'docs/operations.md')}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=${o.user}
Group=${o.user}
ExecStart=${exec}
Restart=on-failure
RestartSec=5s
# serve stops cleanly on SIGTERM (closes transfers, releases the data dir lock).
KillSignal=SIGTERM
TimeoutStopSec=30s
# Bind TFTP port 69 (and other ports below 1024) without root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
${underVarLib ? `StateDirectory=${o.dataDir.slice('/var/lib/'.length)}\nStateDirectoryMode=0700\n` : ''}ProtectSystem=full
PrivateTmp=yes
LimitNOFILE=65536
Environment=NODE_ENV=production

[Install]
WantedBy=multi-user.target
`;
}

const SERVE_FLAGS: Record<'--listen' | '--http-port' | '--tftp-port' | '--frontend-url', RegExp> = {
  '--listen': /^[0-9a-fA-F.:]+$/,
  '--http-port': /^\d{1,5}$/,
  '--tftp-port': /^\d{1,5}$/,
  '--frontend-url': /^https?:\/\/\S+$/,
};

export const registerSystemdCommand: CommandModule = (program: Command, ctx: CliContext) => {
  program
    .command('systemd-unit')
    .description('print a systemd unit that runs `kickswarm serve` as a service (see docs/operations.md)')
    .option('--user <user>', 'system user the service runs as', 'kickswarm')
    .option('--listen <addr>', 'address to bind (default: 0.0.0.0)')
    .option('--http-port <n>', 'HTTP port (default: 8080)')
    .option('--tftp-port <n>', 'TFTP port', '69')
    .option('--frontend-url <url>', 'URL nodes use to reach this frontend')
    .action((o: { user: string; listen?: string; httpPort?: string; tftpPort: string; frontendUrl?: string }, cmd: Command) => {
      if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(o.user)) throw new InvalidInputError(`--user must be a system user name, not ${JSON.stringify(o.user)}`);
      const serveArgs: string[] = [];
      for (const [flag, value] of [
        ['--listen', o.listen],
        ['--http-port', o.httpPort],
        ['--tftp-port', o.tftpPort],
        ['--frontend-url', o.frontendUrl],
      ] as const) {
        if (value === undefined) continue;
        if (!SERVE_FLAGS[flag].test(value) || (flag.endsWith('-port') && Number(value) > 65535)) throw new InvalidInputError(`${flag} ${JSON.stringify(value)} is not valid`);
        serveArgs.push(flag, value);
      }
      serveArgs.push('--log-format', 'json');
      // The data dir is named, not made: the unit usually runs on another path than the shell's.
      const g = cmd.optsWithGlobals<{ dataDir?: string; config?: string }>();
      const dataDir = path.resolve(g.dataDir ?? process.env.KICKSWARM_DATA_DIR ?? '/var/lib/kickswarm');
      ctx.out(
        systemdUnit({
          node: process.execPath,
          cli: path.join(PACKAGE_ROOT, 'bin/kickswarm.js'),
          dataDir,
          user: o.user,
          configFile: g.config ? path.resolve(g.config) : undefined,
          serveArgs,
        }).trimEnd(),
      );
    });
};
