/** `kickswarm-install proxy`: runs the localhost install proxy until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { createLogger } from '../log.js';
import { sessionFrom } from '../session.js';
import type { InstallCliContext, InstallCommandModule } from './context.js';
import { numberFlag } from './flags.js';

interface ProxyFlags {
  frontend: string;
  port: string;
  linger: string;
  stallTimeout: string;
  localAddress?: string;
  peerPort: string;
  cacheDir?: string;
  session?: string;
  logLevel?: string;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

async function runProxy(o: ProxyFlags, ctx: InstallCliContext): Promise<void> {
  if (o.logLevel !== undefined && !LEVELS.includes(o.logLevel)) {
    throw new InvalidInputError(`--log-level must be one of ${LEVELS.join('|')}, not ${JSON.stringify(o.logLevel)}`);
  }
  const log = createLogger(o.logLevel);
  // Loaded here, not at start: loading webtorrent costs about 0.45 CPU-s, which the other commands do not need.
  const { SwarmProxy } = await import('../proxy/proxy.js');
  const proxy = new SwarmProxy({
    frontend: o.frontend,
    port: numberFlag('--port', o.port, true),
    linger: numberFlag('--linger', o.linger, false),
    stallTimeout: numberFlag('--stall-timeout', o.stallTimeout, false),
    localAddress: o.localAddress,
    peerPort: numberFlag('--peer-port', o.peerPort, true),
    cacheDir: o.cacheDir,
    session: sessionFrom(o.session),
    log,
  });
  const { url } = await proxy.start();
  ctx.out(url);
  const signal = await ctx.interrupted();
  log.info({ signal, images: proxy.stats() }, 'shutting down');
  await proxy.close();
  log.info('proxy closed');
}

export const registerProxyCommand: InstallCommandModule = (program: Command, ctx: InstallCliContext) => {
  program
    .command('proxy')
    .description('run the localhost install proxy: /install/images/NAME over the swarm, other /install/* to the frontend')
    .requiredOption('--frontend <url>', 'frontend base URL, e.g. http://10.1.1.1:8080')
    .option('--port <n>', 'local HTTP port on 127.0.0.1 (0: any free port)', '0')
    .option('--linger <seconds>', 'keep seeding an image this long after its last request', '30')
    .option('--stall-timeout <seconds>', 'seconds without a verified piece before the web seed takes over', '20')
    .option('--local-address <ip>', "this node's address: source of all connections, peer listen address")
    .option('--peer-port <n>', 'TCP port for other peers (0: any free port)', '0')
    .option('--cache-dir <dir>', 'where downloaded images are kept (default: a temp dir removed on exit)')
    .option('--session <token>', 'install session token, sent to the frontend (default: kickswarm.session= from /proc/cmdline)')
    .option('--log-level <level>', `least severe log level written (one of: ${LEVELS.join(', ')}; default: info)`)
    .action((o: ProxyFlags) => runProxy(o, ctx));
};
