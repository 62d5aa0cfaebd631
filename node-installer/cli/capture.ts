/**
 * `kickswarm-install capture`: captures this node's disk (or a file) as a new
 * image on the frontend. The frontend URL comes from `--frontend` or
 * `kickswarm.frontend=` on /proc/cmdline, the node's capture session token
 * from `--session` (or its older name `--token`) or `kickswarm.session=`. Progress goes to stderr (a bar on a terminal,
 * a line per 10 % of each pass otherwise), the result to stdout. Exit 0 only
 * when the frontend stored the image; bad flags exit 2, anything else 1.
 */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { InvalidInputError, KickswarmError } from '../../protocol/errors.js';
import { CMDLINE_SESSION } from '../../protocol/session.js';
import { sessionFrom } from '../session.js';
import { parseIpv4 } from '../../protocol/node.js';
import { type CaptureProgress, type CaptureResult, captureImage } from '../capture/capture.js';
import { createLogger } from '../log.js';
import type { InstallCliContext, InstallCommandModule } from './context.js';
import { numberFlag } from './flags.js';
import { frontendFrom } from './run.js';

interface CaptureFlags {
  frontend?: string;
  source: string;
  image: string;
  session?: string;
  token?: string;
  localAddress?: string;
  chunkSize: string;
  level: string;
  concurrency?: string;
  deadline: string;
  logLevel?: string;
  json?: boolean;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The capture session token: `--session`/`--token`, else `kickswarm.session=` from the kernel command line. */
export function captureTokenFrom(flag: string | undefined, cmdlineFile = '/proc/cmdline'): string {
  const token = sessionFrom(flag, cmdlineFile);
  if (!token) throw new InvalidInputError(`no session token: give --session TOKEN (or boot with ${CMDLINE_SESSION}=TOKEN, as the node's capture config does)`);
  return token;
}

/** Bytes from `1048576`, `1024K`, `1M`, `4MiB` (binary units). */
export function parseByteSize(flag: string, value: string): number {
  const m = /^\s*(\d{1,10})\s*(?:([KkMm])(?:i?B)?)?\s*$/.exec(value);
  if (!m) throw new InvalidInputError(`${flag} must be a size such as 1M, 4MiB or 65536, not ${JSON.stringify(value.slice(0, 40))}`);
  const unit = m[2]?.toUpperCase();
  return Number(m[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 * 1024 : 1);
}

const MiB = 1024 * 1024;
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
const PHASE: Record<CaptureProgress['phase'], string> = { scan: 'pass 1/2 reading', upload: 'pass 2/2 uploading' };

/** A cli-progress bar per pass on a terminal; otherwise a line at the start of each pass and every 10 %. */
export function captureProgressView(isTTY: boolean, err: (line: string) => void): { update: (p: CaptureProgress) => void; stop: () => void } {
  let phase: CaptureProgress['phase'] | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let nextTenth = 1;
  return {
    update(p) {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        nextTenth = 1;
        if (isTTY) {
          bar = new cliProgress.SingleBar(
            { format: `${PHASE[p.phase].padEnd(19)} [{bar}] {percentage}% | {done} of {size} | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, p.total), 0, { done: mib(0), size: mib(p.total) });
        } else {
          err(`${PHASE[p.phase]}: ${mib(p.total)}`);
        }
      }
      if (bar) bar.update(p.done, { done: mib(p.done) });
      else if (p.total > 0 && p.done >= (nextTenth * p.total) / 10) {
        err(`${PHASE[p.phase]}: ${Math.floor((100 * p.done) / p.total)}% (${mib(p.done)} of ${mib(p.total)})`);
        nextTenth = Math.floor((10 * p.done) / p.total) + 1;
      }
    },
    stop: () => bar?.stop(),
  };
}

function summary(r: CaptureResult, source: string): string {
  const rate = r.seconds > 0 ? r.rawSize / r.seconds : 0;
  return [
    `captured ${source} from node ${r.node} as image ${r.image.name}`,
    `raw size:    ${mib(r.rawSize)} (${r.rawSize} bytes)`,
    `uploaded:    ${mib(r.uploadSize)} (${r.uploadSize} bytes, ${((100 * r.uploadSize) / r.rawSize).toFixed(1)}% of raw)`,
    `chunks:      ${r.chunkCount} of ${r.image.chunkSize} bytes, ${r.storedChunks} stored, ${r.chunkCount - r.storedChunks} all-zero`,
    `sha256:      ${r.sha256}`,
    `info-hash:   ${r.image.infoHash}`,
    `time:        ${r.seconds.toFixed(1)} s (pass 1 ${r.scanSeconds.toFixed(1)} s, pass 2 ${r.uploadSeconds.toFixed(1)} s), ${mib(rate)}/s of disk`,
  ].join('\n');
}

async function runCapture(o: CaptureFlags, ctx: InstallCliContext): Promise<void> {
  if (o.logLevel !== undefined && !LEVELS.includes(o.logLevel)) {
    throw new InvalidInputError(`--log-level must be one of ${LEVELS.join('|')}, not ${JSON.stringify(o.logLevel)}`);
  }
  const frontend = frontendFrom(o.frontend);
  const token = captureTokenFrom(o.session ?? o.token);
  const localAddress = o.localAddress ? parseIpv4(o.localAddress) : undefined;
  const chunkSize = parseByteSize('--chunk-size', o.chunkSize);
  const level = numberFlag('--level', o.level, true);
  const concurrency = o.concurrency === undefined ? undefined : numberFlag('--concurrency', o.concurrency, true);
  const log = createLogger(o.logLevel ?? process.env.KICKSWARM_LOG_LEVEL ?? 'error');
  const view = captureProgressView(process.stderr.isTTY === true, ctx.err);
  const ac = new AbortController();
  void ctx.interrupted().then((sig) => ac.abort(new KickswarmError('internal', `capture interrupted (${sig}); the frontend keeps nothing of it`)));
  let result: CaptureResult;
  try {
    result = await captureImage({
      frontend,
      source: o.source,
      image: o.image,
      token,
      localAddress,
      chunkSize,
      level,
      concurrency,
      deadlineSeconds: numberFlag('--deadline', o.deadline, false),
      signal: ac.signal,
      log,
      onProgress: view.update,
    });
  } finally {
    view.stop();
  }
  ctx.out(o.json ? JSON.stringify(result) : summary(result, o.source));
}

export const registerCaptureCommand: InstallCommandModule = (program: Command, ctx: InstallCliContext) => {
  program
    .command('capture')
    .description("capture this node's disk as a new image on the frontend (boot action capture)")
    .option('--frontend <url>', 'frontend URL (default: kickswarm.frontend= from /proc/cmdline)')
    .requiredOption('--source <dev-or-file>', 'disk (block device) or file to capture, e.g. /dev/sda')
    .requiredOption('--image <name>', 'name of the new image on the frontend')
    .option('--session <token>', 'capture session token (default: kickswarm.session= from /proc/cmdline)')
    .option('--token <token>', 'older name of --session')
    .option('--local-address <ip>', "this node's own address to send from (simulated nodes on one machine)")
    .option('--chunk-size <size>', 'image chunk size, a power of two from 64K to 16M', '1M')
    .option('--level <n>', 'deflate level 1 (fast) .. 9 (small)', '6')
    .option('--concurrency <n>', 'chunks read and compressed in parallel (default: CPU count)')
    .option('--deadline <s>', 'seconds to keep trying an unreachable frontend before giving up', '60')
    .option('--log-level <level>', `least severe log level written; error shows progress lines only (one of: ${LEVELS.join(', ')}; default: error)`)
    .option('--json', 'print the result as JSON')
    .action((o: CaptureFlags) => runCapture(o, ctx));
};
