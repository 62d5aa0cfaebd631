/** `kickswarm serve`: runs the frontend (HTTP, TFTP, tracker, seeder) until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { parseIpv4, parseSimpleName } from '../../protocol/node.js';
import { Frontend } from '../frontend.js';
import type { CliContext, CommandModule } from './context.js';

function port(flag: string) {
  return (v: string): number => {
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new InvalidInputError(`${flag} must be a port number 0-65535, not ${JSON.stringify(v)}`);
    return Number(v);
  };
}

export const registerServeCommand: CommandModule = (program: Command, ctx: CliContext) => {
  program
    .command('serve')
    .description('run the frontend: HTTP (kickstart.cgi, images, tracker, API) and TFTP (PXE)')
    .option('--listen <addr>', 'address to bind (default 0.0.0.0)')
    .option('--http-port <n>', 'HTTP port (default 8080)', port('--http-port'))
    .option('--tftp-port <n>', 'TFTP port (default 6969; real PXE uses 69)', port('--tftp-port'))
    .option('--tftp-root <dir>', 'static TFTP files such as pxelinux.0 (default <data-dir>/tftpboot)')
    .option('--frontend-url <url>', 'URL nodes use to reach this frontend (default http://<address>:<http-port>)')
    .option('--discover <appliance>', 'register unknown nodes that PXE-boot as this appliance (insert-ethers)')
    .option('--rack <n>', 'rack for discovered nodes', '0')
    .option('--first-ip <ip>', 'first IP for discovered nodes')
    .option('--auto-approve', 'discovered nodes get their kickstart at once (default: they wait for `kickswarm node approve`)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace')
    .action(async (o: { listen?: string; httpPort?: number; tftpPort?: number; tftpRoot?: string; frontendUrl?: string; discover?: string; rack: string; firstIp?: string; autoApprove?: boolean; logLevel?: string }) => {
      if (!/^\d{1,4}$/.test(o.rack)) throw new InvalidInputError(`--rack must be a whole number, not ${JSON.stringify(o.rack)}`);
      const overrides: Record<string, unknown> = {
        listen: o.listen,
        httpPort: o.httpPort,
        tftpPort: o.tftpPort,
        tftpRoot: o.tftpRoot,
        frontendUrl: o.frontendUrl,
        logLevel: o.logLevel,
      };
      if (o.discover) {
        overrides.discovery = {
          appliance: parseSimpleName(o.discover, 'appliance'),
          rack: Number(o.rack),
          firstIp: o.firstIp ? parseIpv4(o.firstIp) : undefined,
          autoApprove: o.autoApprove === true,
        };
      }
      const frontend = new Frontend({
        dataDir: ctx.dataDir().root,
        configFile: ctx.configFile(),
        overrides,
        onDiscovered: (n) => ctx.out(`discovered ${n.name}: mac ${n.mac} ip ${n.ip}${n.pending ? `; awaiting approval: kickswarm node approve ${n.name}` : ''}`),
      });
      const addr = await frontend.start();
      ctx.out(`kickswarm serving ${addr.frontendUrl} (HTTP ${addr.httpPort}, TFTP ${addr.tftpPort}); data dir ${frontend.dirs.root}; Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      ctx.err('kickswarm: shutting down');
      await frontend.close();
    });
};
