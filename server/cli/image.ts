/**
 * `kickswarm image add FILE --name NAME` (a new image, or the next version of
 * an existing one), `image list [--json]`, `image rollback NAME [--to N]`,
 * `image prune NAME --keep N`, `image remove NAME[@N]`, `image build ...`.
 * They work on the data dir's images folder whether or not a server runs; a
 * running server sees the change at its next request. Ctrl-C during `add`
 * leaves nothing behind.
 */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import type { Command } from 'commander';
import { InvalidInputError, KickswarmError } from '../../protocol/errors.js';
import type { ImageRef } from '../../protocol/node.js';
import { ImageStore, type AddProgress, type ImageMeta } from '../images/store.js';
import { type ImageUsageFacts, usersOf } from '../images/usage.js';
import { registerImageBuild } from './image-build.js';
import { formatImageList, imageListing } from './image-list.js';

export { formatImageList, imageListing };
import type { CliContext, CommandModule } from './context.js';
import { humanBytes } from './format.js';

/** cli-progress, loaded when a bar is first drawn. */
const loadCliProgress = (): typeof CliProgress => createRequire(import.meta.url)('cli-progress') as typeof CliProgress;

export interface ImageCommandDeps {
  /**
   * Who uses which image (profiles, nodes, running installs, last installs);
   * `remove` and `prune` refuse while a version is used. Throws when usage
   * cannot be known (then they refuse too). Absent: nothing is in use.
   */
  usage?: (ctx: CliContext) => ImageUsageFacts;
}

function openStore(ctx: CliContext, withConfig = false): ImageStore {
  const frontendUrl = withConfig ? ctx.config().frontendUrl : undefined;
  return new ImageStore(ctx.dataDir().images, { frontendUrl });
}

const PHASE_LABEL: Record<AddProgress['phase'], string> = { convert: 'converting', verify: 'verifying', torrent: 'hashing torrent' };

/** Progress bar on a terminal; a plain line per phase and every 10 % otherwise. */
export function progressReporter(ctx: CliContext): { report: (p: AddProgress) => void; stop: () => void } {
  if (ctx.isTTY) {
    let bar: CliProgress.SingleBar | undefined;
    let phase: AddProgress['phase'] | undefined;
    return {
      report(p) {
        if (p.phase !== phase) {
          bar?.stop();
          phase = p.phase;
          bar = new (loadCliProgress().SingleBar)(
            { format: `${PHASE_LABEL[p.phase].padEnd(15)} [{bar}] {percentage}% | {done} | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false },
            loadCliProgress().Presets.shades_classic,
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
    `version:       ${m.version} (${m.ref}, now current)`,
    `raw size:      ${humanBytes(m.rawSize)} (${m.rawSize} bytes)`,
    `stored size:   ${humanBytes(m.storedSize)} (${m.storedSize} bytes, ${m.rawSize ? ((100 * m.storedSize) / m.rawSize).toFixed(1) : '0.0'}%)`,
    `chunks:        ${m.chunkCount} of ${humanBytes(m.chunkSize)}, ${m.storedChunks} stored, ${m.chunkCount - m.storedChunks} all-zero`,
    `sha256:        ${m.sha256}`,
    `info-hash:     ${m.infoHash}`,
  ].join('\n');
}

export async function addImage(ctx: CliContext, file: string, name: string): Promise<ImageMeta> {
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
    return meta;
  } catch (err) {
    progress.stop();
    if (ac.signal.aborted && !(err instanceof KickswarmError)) throw new Error(`interrupted: image ${name} was not added`);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Builds the `image` command module; `deps.usage` is how `remove`, `prune` and `list` learn who uses an image. */
export function imageCommandModule(deps: ImageCommandDeps = {}): CommandModule {
  return (program: Command, ctx: CliContext) => {
    const usage = (): ImageUsageFacts => deps.usage?.(ctx) ?? { wants: [], installing: [], installed: [] };
    const usersFor = (store: ImageStore, facts: ImageUsageFacts) => (ref: ImageRef) => usersOf(facts, ref, currentOf(store));
    const image = program.command('image').description('disk images served to installing nodes (versioned: NAME is the current version, NAME@N exactly version N)');
    image
      .command('add')
      .description('convert a raw disk image (or import a .ksimg) into the store; on an existing name, add its next version and make it current')
      .argument('<file>', 'raw disk image, block device or .ksimg file')
      .requiredOption('--name <name>', 'image name (letters, digits, ".", "_", "-")')
      .action(async (file: string, opts: { name: string }) => {
        await addImage(ctx, file, opts.name);
      });
    image
      .command('list')
      .description('list images with their versions, which is current, who uses each and which nodes were last installed with it')
      .option('--json', 'JSON output (sizes in bytes)')
      .action((opts: { json?: boolean }) => {
        const store = openStore(ctx);
        let facts: ImageUsageFacts | undefined;
        try {
          facts = usage();
        } catch (err) {
          ctx.err(`kickswarm: warning: ${(err as Error).message}`);
        }
        ctx.out(formatImageList(imageListing(store.listAll(), facts, currentOf(store)), Boolean(opts.json)));
      });
    image
      .command('rollback')
      .description('make the version before the current one current again (or --to N); nodes installed from now on get it')
      .argument('<name>')
      .option('--to <version>', 'make exactly this version current')
      .action((name: string, opts: { to?: string }) => {
        const to = opts.to === undefined ? undefined : parseVersion(opts.to);
        const r = openStore(ctx).rollback(name, to);
        ctx.out(`image ${r.to.name}: current version ${r.from.version} -> ${r.to.version} (sha256 ${r.to.sha256.slice(0, 16)})`);
      });
    image
      .command('prune')
      .description('remove old versions (all but the current one and the --keep newest); refused while any of them is used')
      .argument('<name>')
      .requiredOption('--keep <n>', 'how many of the newest versions to keep (at least 1)')
      .action((name: string, opts: { keep: string }) => {
        const keep = parseKeep(opts.keep);
        const store = openStore(ctx);
        const removed = store.prune(name, keep, { usersOf: usersFor(store, usage()) });
        ctx.out(removed.length ? `removed ${removed.map((m) => m.ref).join(', ')}` : `image ${name}: nothing to prune`);
      });
    image
      .command('remove')
      .description('remove an image with all its versions, or one version NAME@N (refused while in use)')
      .argument('<name>', 'NAME or NAME@N')
      .action((name: string) => {
        const store = openStore(ctx);
        store.remove(name, { inUse: (ref) => usersFor(store, usage())(ref) });
        ctx.out(`removed image ${name}`);
      });
    registerImageBuild(image, ctx, addImage);
  };
}

function currentOf(store: ImageStore): (name: string) => number | undefined {
  return (name) => {
    try {
      return store.versions(name).current;
    } catch {
      return undefined;
    }
  };
}

function parseVersion(s: string): number {
  if (!/^[1-9]\d{0,5}$/.test(s.trim())) throw new InvalidInputError(`--to wants a version number (1, 2, ...), not ${JSON.stringify(s)}`);
  return Number(s);
}

function parseKeep(s: string): number {
  if (!/^[1-9]\d{0,5}$/.test(s.trim())) throw new InvalidInputError(`--keep wants a whole number of at least 1, not ${JSON.stringify(s)}`);
  return Number(s);
}

/** The `image` commands with no usage check. */
export const registerImageCommands: CommandModule = imageCommandModule();
