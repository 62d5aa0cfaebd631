/**
 * `kickswarm image add FILE --name NAME`, `image list [--json]`, `image remove NAME`.
 * They work on the data dir's images folder whether or not a server runs; a
 * running server sees the change at its next request. Ctrl-C during `add`
 * leaves nothing behind.
 */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { KickswarmError } from '../../protocol/errors.js';
import { ImageStore, type AddProgress, type ImageMeta } from '../images/store.js';
import type { CliContext, CommandModule } from './context.js';
import { humanBytes, json, table } from './format.js';

export interface ImageCommandDeps {
  /** Who uses an image (e.g. `node c0-1 (profile compute)`); `image remove` refuses while any. */
  inUse?: (name: string, ctx: CliContext) => string[];
}

function openStore(ctx: CliContext, withConfig = false): ImageStore {
  const frontendUrl = withConfig ? ctx.config().frontendUrl : undefined;
  return new ImageStore(ctx.dataDir().images, { frontendUrl });
}

const PHASE_LABEL: Record<AddProgress['phase'], string> = { convert: 'converting', verify: 'verifying', torrent: 'hashing torrent' };

/** Progress bar on a terminal; a plain line per phase and every 10 % otherwise. */
function progressReporter(ctx: CliContext): { report: (p: AddProgress) => void; stop: () => void } {
  if (ctx.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    let phase: AddProgress['phase'] | undefined;
    return {
      report(p) {
        if (p.phase !== phase) {
          bar?.stop();
          phase = p.phase;
          bar = new cliProgress.SingleBar(
            { format: `${PHASE_LABEL[p.phase].padEnd(15)} [{bar}] {percentage}% | {done} | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, p.total ?? 0), 0, { done: humanBytes(0) });
        }
        if (p.total !== undefined) bar!.setTotal(Math.max(1, p.total));
        bar!.update(p.done, { done: humanBytes(p.done) });
      },
      stop: () => bar?.stop(),
    };
  }
  let phase: AddProgress['phase'] | undefined;
  let nextTenth = 0;
  return {
    report(p) {
      if (p.phase !== phase) {
        phase = p.phase;
        nextTenth = 1;
        ctx.err(`${PHASE_LABEL[p.phase]}...`);
      }
      if (p.total && p.done >= (nextTenth * p.total) / 10) {
        ctx.err(`${PHASE_LABEL[p.phase]}: ${Math.floor((100 * p.done) / p.total)}% (${humanBytes(p.done)} of ${humanBytes(p.total)})`);
        nextTenth = Math.floor((10 * p.done) / p.total) + 1;
      }
    },
    stop: () => {},
  };
}

function summaryLines(m: ImageMeta): string {
  return [
    `name:          ${m.name}`,
    `raw size:      ${humanBytes(m.rawSize)} (${m.rawSize} bytes)`,
    `stored size:   ${humanBytes(m.storedSize)} (${m.storedSize} bytes, ${m.rawSize ? ((100 * m.storedSize) / m.rawSize).toFixed(1) : '0.0'}%)`,
    `chunks:        ${m.chunkCount} of ${humanBytes(m.chunkSize)}, ${m.storedChunks} stored, ${m.chunkCount - m.storedChunks} all-zero`,
    `sha256:        ${m.sha256}`,
    `info-hash:     ${m.infoHash}`,
  ].join('\n');
}

async function addImage(ctx: CliContext, file: string, name: string): Promise<void> {
  const store = openStore(ctx, true);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = progressReporter(ctx);
  const started = Date.now();
  try {
    const meta = await store.add(file, name, { onProgress: progress.report, signal: ac.signal });
    progress.stop();
    ctx.out(summaryLines(meta));
    const secs = (Date.now() - started) / 1000;
    ctx.err(`added in ${secs.toFixed(1)}s (${humanBytes(meta.rawSize / Math.max(secs, 0.001))}/s)`);
  } catch (err) {
    progress.stop();
    if (ac.signal.aborted && !(err instanceof KickswarmError)) throw new Error(`interrupted: image ${name} was not added`);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `image list` as a table (human sizes) or JSON (bytes). */
export function formatImageList(images: ImageMeta[], asJson: boolean): string {
  if (asJson) return json(images);
  if (images.length === 0) return 'no images (add one with: kickswarm image add FILE --name NAME)';
  return table(
    ['NAME', 'RAW', 'STORED', 'CHUNKS', 'SHA256', 'CREATED'],
    images.map((m) => [
      m.name,
      humanBytes(m.rawSize),
      humanBytes(m.storedSize),
      `${m.storedChunks}/${m.chunkCount}`,
      m.sha256.slice(0, 16),
      m.createdAt.replace(/\.\d+Z$/, 'Z'),
    ]),
  );
}

/** Builds the `image` command module; `deps.inUse` is how `remove` learns who uses an image. */
export function imageCommandModule(deps: ImageCommandDeps = {}): CommandModule {
  return (program: Command, ctx: CliContext) => {
    const image = program.command('image').description('disk images served to installing nodes');
    image
      .command('add')
      .description('convert a raw disk image (or import a .ksimg) into the image store')
      .argument('<file>', 'raw disk image, block device or .ksimg file')
      .requiredOption('--name <name>', 'image name (letters, digits, ".", "_", "-")')
      .action(async (file: string, opts: { name: string }) => addImage(ctx, file, opts.name));
    image
      .command('list')
      .description('list images')
      .option('--json', 'JSON output (sizes in bytes)')
      .action((opts: { json?: boolean }) => ctx.out(formatImageList(openStore(ctx).list(), Boolean(opts.json))));
    image
      .command('remove')
      .description('remove an image (refused while in use)')
      .argument('<name>')
      .action((name: string) => {
        openStore(ctx).remove(name, { inUse: deps.inUse ? (n) => deps.inUse!(n, ctx) : undefined });
        ctx.out(`removed image ${name}`);
      });
  };
}

/** The `image` commands with no usage check (until profile usage is wired in). */
export const registerImageCommands: CommandModule = imageCommandModule();
