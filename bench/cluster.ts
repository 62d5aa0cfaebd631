/**
 * Whole-cluster reinstall on one machine with real, rate-limited links, against
 * the physical lower bound (Kumar & Ross 2006). Root only: builds a network
 * namespace per node and one for the frontend, joined through a bridge, every
 * link shaped with tc; runs the real `kickswarm serve` and `kickswarm-install
 * run` programs in them; removes everything it made, also on Ctrl-C.
 *
 *   npm run bench:cluster -- --nodes N --method torrent|multicast|http --rate 50mbit --image-mb 64 [--loss 1%] [--json] [--out FILE]
 *
 * Exit status: 0 when every node installed a byte-identical image and nothing
 * was left behind, 1 otherwise, 2 for bad options or a machine that cannot run
 * it (not root, no `ip netns`).
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { MULTICAST_BLOCK_SIZE } from '../server/config/schema.js';
import { METHODS, type Method, parseLoss, parseRate } from './cluster/bound.js';
import { DATA_KINDS, type DataKind } from './cluster/image.js';
import { requireNetns } from './cluster/netns.js';
import { formatResult } from './cluster/report.js';
import { releaseOnExit, Resources } from './cluster/resources.js';
import { runBench } from './cluster/run.js';
import { INSTALLER_FORMS, RUNTIMES, type InstallerForm, type RuntimeChoice } from './cluster/runtime.js';

interface Flags {
  nodes: string;
  method: Method;
  rate: string;
  imageMb: string;
  loss: string;
  data: DataKind;
  tbfBurst: string;
  tbfLatency: string;
  multicastRate?: string;
  blockSize?: string;
  linger?: string;
  timeout?: string;
  runtime: RuntimeChoice;
  installer: InstallerForm;
  cpuProf?: string;
  nodeFlags?: string;
  keep?: boolean;
  json?: boolean;
  out?: string;
}

class UsageError extends Error {}

function wholeNumber(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

async function main(f: Flags): Promise<number> {
  let loss: number;
  try {
    parseRate(f.rate);
    if (f.multicastRate) parseRate(f.multicastRate);
    loss = parseLoss(f.loss);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const opts = {
    nodes: wholeNumber('--nodes', f.nodes, 1, 254),
    method: f.method,
    rate: f.rate,
    imageMb: wholeNumber('--image-mb', f.imageMb, 8, 65536),
    loss,
    data: f.data,
    tbfBurst: f.tbfBurst,
    tbfLatency: f.tbfLatency,
    multicastRate: f.multicastRate,
    multicastBlockSize: f.blockSize === undefined ? MULTICAST_BLOCK_SIZE.default : wholeNumber('--block-size', f.blockSize, MULTICAST_BLOCK_SIZE.min, MULTICAST_BLOCK_SIZE.max),
    linger: f.linger === undefined ? undefined : wholeNumber('--linger', f.linger, 0, 86400),
    timeoutSeconds: f.timeout === undefined ? undefined : wholeNumber('--timeout', f.timeout, 10, 86400),
    runtime: f.runtime,
    installer: f.installer,
    cpuProf: f.cpuProf,
    nodeFlags: f.nodeFlags,
    keep: Boolean(f.keep),
    say: (line: string) => process.stderr.write(`${line}\n`),
  };
  try {
    requireNetns();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const res = new Resources();
  const unhook = releaseOnExit(res, opts.say);
  try {
    const result = await runBench(opts, res);
    const json = JSON.stringify(result, null, 2);
    if (f.out) fs.writeFileSync(f.out, `${json}\n`);
    process.stdout.write(f.json ? `${json}\n` : `${formatResult(result)}\n`);
    return result.ok ? 0 : 1;
  } finally {
    const { namespacesLeft } = res.releaseSync();
    if (namespacesLeft.length) opts.say(`could not remove namespaces: ${namespacesLeft.join(', ')}`);
    unhook();
  }
}

const program = new Command('bench:cluster')
  .description('reinstall N nodes in network namespaces with rate-limited links; compare the makespan with the lower bound')
  .option('--nodes <n>', 'nodes (one namespace each)', '4')
  .addOption(new Option('--method <m>', 'how the image travels').choices(METHODS).default('torrent'))
  .option('--rate <rate>', 'every link, each direction (tc units: kbit, mbit, gbit)', '50mbit')
  .option('--image-mb <m>', 'raw image size in MiB', '64')
  .option('--loss <p>', 'packet loss into every host (fraction or percentage; netem)', '0')
  .addOption(new Option('--data <kind>', 'image content: random (incompressible, last 1/16 zeros) or synthetic (ext4, mixed)').choices(DATA_KINDS).default('random'))
  .option('--tbf-burst <size>', 'tbf bucket', '32kbit')
  .option('--tbf-latency <time>', 'tbf queue length as time', '50ms')
  .option('--multicast-rate <rate>', "multicast sender cap (default 95% of the link's frames)")
  .option(
    '--block-size <bytes>',
    `multicast DATA payload per datagram, the frontend's multicast.blockSize (${MULTICAST_BLOCK_SIZE.min}-${MULTICAST_BLOCK_SIZE.max}; above 1400 a 1500-byte MTU link carries each datagram as IP fragments)`,
  )
  .option('--linger <s>', 'installer --linger (default: seed until every node is done, then stop)')
  .option('--timeout <s>', 'give up after this many seconds (default 120 + 3 x N x F / rate)')
  .addOption(new Option('--runtime <r>', 'dist, compiled current sources (build), or tsx (source)').choices(RUNTIMES).default('auto'))
  .addOption(new Option('--installer <form>', 'the installer as one bundled file, as the boot environment runs it, or as the module tree').choices(INSTALLER_FORMS).default('bundle'))
  .option('--cpu-prof <dir>', 'profile the frontend and the installers (node --cpu-prof) into DIR/frontend and DIR/installers')
  .option('--node-flags <flags>', 'extra Node.js flags for every installer, e.g. --node-flags=--single-threaded-gc')
  .option('--keep', 'keep the work folder (data dir, logs, targets)')
  .option('--json', 'print the result as JSON')
  .option('--out <file>', 'also write the JSON result to FILE')
  .exitOverride();

const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
try {
  program.parse(argv, { from: 'user' });
} catch (e) {
  process.exit((e as { code?: string }).code === 'commander.helpDisplayed' ? 0 : 2);
}
main(program.opts<Flags>()).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench:cluster: ${e.message}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
