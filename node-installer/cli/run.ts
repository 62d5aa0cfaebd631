/**
 * `kickswarm-install run`: installs this node. The frontend URL comes from
 * `--frontend` or `kickswarm.frontend=` on /proc/cmdline; the MAC from `--mac`
 * (sent as X-RHN-Provisioning-MAC-0); the install session token from
 * `--session` or `kickswarm.session=` (sent with every request). Exit 0 only when the install succeeded
 * and the boot action flipped to `os`.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { CMDLINE_FRONTEND, parseCmdline } from '../../protocol/install.js';
import { parseIpv4, parseMac } from '../../protocol/node.js';
import { runInstall } from '../install/run.js';
import { sessionFrom } from '../session.js';
import { createLogger } from '../log.js';
import { LogTail } from '../report/log-tail.js';
import type { InstallCliContext, InstallCommandModule } from './context.js';
import { numberFlag } from './flags.js';

interface RunFlags {
  frontend?: string;
  mac?: string;
  session?: string;
  target?: string;
  reboot: boolean;
  kexec?: boolean;
  localAddress?: string;
  linger: string;
  deadline: string;
  stallTimeout: string;
  multicastInterface?: string;
  multicastLoss?: string;
  multicastTimeout: string;
  logLevel?: string;
  json?: boolean;
}

/** `--frontend`, else `kickswarm.frontend=` from the kernel command line. */
export function frontendFrom(flag: string | undefined, cmdlineFile = '/proc/cmdline'): string {
  let url = flag;
  if (!url) {
    try {
      url = parseCmdline(fs.readFileSync(cmdlineFile, 'utf8'))[CMDLINE_FRONTEND];
    } catch {
      url = undefined;
    }
  }
  if (!url) throw new InvalidInputError(`no frontend: give --frontend URL (or boot with ${CMDLINE_FRONTEND}=URL)`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(`--frontend ${JSON.stringify(url.slice(0, 80))} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidInputError('--frontend must be an http:// URL');
  return u.origin;
}

async function run(o: RunFlags, ctx: InstallCliContext): Promise<void> {
  const frontend = frontendFrom(o.frontend);
  const mac = o.mac ? parseMac(o.mac) : undefined;
  const session = sessionFrom(o.session);
  const localAddress = o.localAddress ? parseIpv4(o.localAddress) : undefined;
  const loss = o.multicastLoss === undefined ? undefined : numberFlag('--multicast-loss', o.multicastLoss, false);
  if (loss !== undefined && loss >= 1) throw new InvalidInputError('--multicast-loss is a fraction below 1 (e.g. 0.05)');
  const tail = new LogTail();
  const log = createLogger(o.logLevel, tail);
  const result = await runInstall({
    frontend,
    mac,
    session,
    target: o.target,
    localAddress,
    reboot: !o.reboot ? 'none' : o.kexec ? 'kexec' : 'auto',
    linger: numberFlag('--linger', o.linger, false),
    interrupted: () => ctx.interrupted(),
    deadlineSeconds: numberFlag('--deadline', o.deadline, false),
    stallTimeout: numberFlag('--stall-timeout', o.stallTimeout, false),
    multicast: { interfaceAddress: o.multicastInterface, lossRate: loss, noDataTimeoutMs: numberFlag('--multicast-timeout', o.multicastTimeout, false) * 1000 },
    log,
    logTail: tail,
  });
  ctx.out(
    o.json
      ? JSON.stringify(result)
      : `installed ${result.image} on ${o.target ?? 'the kickstart target'} in ${result.seconds.toFixed(1)} s (sha256 ${result.sha256}; ${result.bytesFromPeers} bytes from peers, ${result.bytesFromFrontend} from the frontend)`,
  );
}

export const registerRunCommand: InstallCommandModule = (program: Command, ctx: InstallCliContext) => {
  program
    .command('run')
    .description('install this node: kickstart, image, %post, boot flip, reboot')
    .option('--frontend <url>', 'frontend URL (default: kickswarm.frontend= from /proc/cmdline)')
    .option('--mac <mac>', "this node's MAC (sent as X-RHN-Provisioning-MAC-0)")
    .option('--session <token>', 'install session token, sent as X-Kickswarm-Session (default: kickswarm.session= from /proc/cmdline)')
    .option('--target <path>', "disk or file to install to (default: the kickstart's image target)")
    .option('--no-reboot', 'do not reboot or kexec at the end')
    .option('--kexec', 'kexec into the installed kernel (fail if it has none) instead of choosing automatically')
    .option('--local-address <ip>', "this node's own address to send from (simulated nodes on one machine)")
    .option('--linger <s>', 'seconds to keep seeding after success', '30')
    .option('--deadline <s>', 'seconds to keep retrying an unreachable or busy frontend', '600')
    .option('--stall-timeout <s>', 'seconds without swarm progress before falling back to HTTP', '20')
    .option('--multicast-interface <ip>', 'interface address for multicast (default: 127.0.0.1 when the frontend is on loopback)')
    .option('--multicast-loss <p>', 'drop this fraction of multicast datagrams (loss testing)')
    .option('--multicast-timeout <s>', 'seconds without multicast data before falling back to the swarm, then HTTP', '15')
    .option('--log-level <level>', 'least severe log level written (one of: fatal, error, warn, info, debug, trace, silent; default: info)')
    .option('--json', 'print the result as JSON')
    .action((o: RunFlags) => run(o, ctx));
};
