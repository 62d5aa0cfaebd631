/**
 * `kickswarm serve`: runs the frontend (HTTP, TFTP, tracker, seeder) until SIGINT/SIGTERM.
 * The data dir, its lock and the ports are checked (../preflight.ts) before the
 * frontend's modules are loaded, so a server that cannot run fails within a
 * fraction of its start-up time.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { parseIpv4, parseSimpleName } from '../../protocol/node.js';
import { LOG_FORMATS } from '../log-formats.js';
import { preflightServe } from '../preflight.js';
import type { CliContext, CommandModule } from './context.js';

function port(flag: string) {
  return (v: string): number => {
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new InvalidInputError(`${flag} must be a port number 0-65535, not ${JSON.stringify(v)}`);
    return Number(v);
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const registerServeCommand: CommandModule = (program: Command, ctx: CliContext) => {
  program
    .command('serve')
    .description('run the frontend: HTTP (kickstart.cgi, images, tracker, API) and TFTP (PXE)')
    .option('--listen <addr>', 'address to bind (default: 0.0.0.0)')
    .option('--http-port <n>', 'HTTP port (default: 8080)', port('--http-port'))
    .option('--tftp-port <n>', 'TFTP port; real PXE uses 69 (default: 6969)', port('--tftp-port'))
    .option('--tftp-root <dir>', 'static TFTP files such as pxelinux.0 (default: <data-dir>/tftpboot)')
    .option('--frontend-url <url>', 'URL nodes use to reach this frontend (default: http://<address>:<http-port>)')
    .option('--discover <appliance>', 'register unknown nodes that PXE-boot as this appliance (insert-ethers)')
    .option('--rack <n>', 'rack for discovered nodes', '0')
    .option('--first-ip <ip>', 'first IP for discovered nodes')
    .option('--auto-approve', 'discovered nodes get their kickstart at once (default: they wait for `kickswarm node approve`)')
    .option('--log-level <level>', 'least severe log level written (one of: fatal, error, warn, info, debug, trace; default: info)')
    .option('--log-format <format>', 'log lines as JSON or for humans; auto: pretty on a terminal, else JSON (one of: auto, json, pretty; default: auto)')
    .action(
      async (o: {
        listen?: string;
        httpPort?: number;
        tftpPort?: number;
        tftpRoot?: string;
        frontendUrl?: string;
        discover?: string;
        rack: string;
        firstIp?: string;
        autoApprove?: boolean;
        logLevel?: string;
        logFormat?: string;
      }) => {
        if (!/^\d{1,4}$/.test(o.rack)) throw new InvalidInputError(`--rack must be a whole number, not ${JSON.stringify(o.rack)}`);
        if (o.logLevel !== undefined && !LOG_LEVELS.includes(o.logLevel)) throw new InvalidInputError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(o.logLevel)}`);
        if (o.logFormat !== undefined && !(LOG_FORMATS as readonly string[]).includes(o.logFormat)) {
          throw new InvalidInputError(`--log-format must be one of ${LOG_FORMATS.join(', ')}, not ${JSON.stringify(o.logFormat)}`);
        }
        const overrides: Record<string, unknown> = {
          listen: o.listen,
          httpPort: o.httpPort,
          tftpPort: o.tftpPort,
          tftpRoot: o.tftpRoot,
          frontendUrl: o.frontendUrl,
          logLevel: o.logLevel,
          logFormat: o.logFormat,
        };
        if (o.discover) {
          overrides.discovery = {
            appliance: parseSimpleName(o.discover, 'appliance'),
            rack: Number(o.rack),
            firstIp: o.firstIp ? parseIpv4(o.firstIp) : undefined,
            autoApprove: o.autoApprove === true,
          };
        }
        // Signals are handled from before the start on, for the life of the process: a SIGTERM while
        // starting stops the server once it is up; a second signal while shutting down exits at once.
        let signalled: (sig: NodeJS.Signals) => void = () => undefined;
        const stopRequested = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          if (++signals > 1) process.exit(sig === 'SIGINT' ? 130 : 143);
          signalled(sig);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const dataDir = ctx.dataDir().root;
        const { heldLock } = await preflightServe({ dataDir, configFile: ctx.configFile(), overrides });
        let Frontend: typeof import('../frontend.js').Frontend;
        try {
          ({ Frontend } = await import('../frontend.js'));
        } catch (e) {
          heldLock.lock.release();
          throw e;
        }
        const frontend = new Frontend({
          dataDir,
          configFile: ctx.configFile(),
          overrides,
          heldLock,
          onDiscovered: (n) => ctx.out(`discovered ${n.name}: mac ${n.mac} ip ${n.ip}${n.pending ? `; awaiting approval: kickswarm node approve ${n.name}` : ''}`),
        });
        const addr = await frontend.start();
        ctx.out(`kickswarm serving ${addr.frontendUrl} (HTTP ${addr.httpPort}, TFTP ${addr.tftpPort}); data dir ${frontend.dirs.root}; Ctrl-C to stop`);
        await stopRequested;
        ctx.err('kickswarm: shutting down');
        await frontend.close();
      },
    );
};
