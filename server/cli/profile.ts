/**
 * `kickswarm profile render NAME` prints exactly the kickstart kickstart.cgi
 * serves that node; `kickswarm profile check` renders every node from the files
 * on disk and prints one line per failure (exit 1) or `ok: N nodes, M profiles`.
 */
import { TemplateError, UnavailableError } from '../../protocol/errors.js';
import { type ImageRef, parseNodeName } from '../../protocol/node.js';
import { lastInstalledImage, servedImage } from '../cluster/installed-image.js';
import { type ImageUsageFacts, usersOf } from '../images/usage.js';
import { advertiseAddress, frontendUrl } from '../config/load.js';
import { ImageStore } from '../images/store.js';
import { checkProfiles, formatProblem } from '../render/check.js';
import { renderEnvFromConfig } from '../render/env.js';
import { loadRenderSet, type RenderSet } from '../render/renderset.js';
import type { RenderEnv } from '../render/types.js';
import type { CliContext, CommandModule } from './context.js';

export interface RenderCliDeps {
  /** The image lookup (feeds the `%addon org_kickswarm` directive); default: the data dir's image store. */
  images?: (ctx: CliContext) => RenderEnv['image'];
}

/** Looks images up in `<data-dir>/images` the way the server does. */
export function imageStoreLookup(ctx: CliContext): NonNullable<RenderEnv['image']> {
  const store = new ImageStore(ctx.dataDir().images);
  return (ref) => store.lookup(ref);
}

/** The RenderEnv a server with this data dir and config would use (its configured URL and port). */
export function cliRenderEnv(ctx: CliContext, deps: RenderCliDeps = {}): RenderEnv {
  const cfg = ctx.config();
  const image = (deps.images ?? imageStoreLookup)(ctx);
  const running = ctx.inventory().getRunningFrontend();
  return renderEnvFromConfig(cfg, {
    frontendUrl: running?.url ?? frontendUrl(cfg),
    tftpServer: running?.tftpServer ?? advertiseAddress(cfg),
    ...(image ? { image } : {}),
  });
}

/** Loads the data dir's set; a broken set prints its problems to stderr and throws the first as a TemplateError. */
export function loadSetForCli(ctx: CliContext, env: RenderEnv): RenderSet {
  const res = loadRenderSet(ctx.dataDir().root, env);
  if (res.set) return res.set;
  for (const p of res.problems) ctx.err(formatProblem(p));
  const [first] = res.problems;
  if (!first) throw new TemplateError(ctx.dataDir().root, undefined, 'the profiles and templates did not load');
  throw new TemplateError(first.file, first.line, `${first.message}${res.problems.length > 1 ? ` (and ${res.problems.length - 1} more)` : ''}`);
}

export function makeProfileCommand(deps: RenderCliDeps = {}): CommandModule {
  return (program, ctx) => {
    const profile = program.command('profile').description('render and check kickstart profiles');
    profile
      .command('render')
      .argument('<name>', 'node name')
      .description('print exactly the kickstart kickstart.cgi serves this node')
      .action((name: string) => {
        const node = ctx.inventory().requireNode(parseNodeName(name));
        const env = cliRenderEnv(ctx, deps);
        ctx.out(loadSetForCli(ctx, env).kickstart(env, node));
      });
    profile
      .command('check')
      .description('render every node from the files on disk; one line per failure, exit 1 on any')
      .action(() => {
        const env = cliRenderEnv(ctx, deps);
        const nodes = ctx.inventory().listNodes();
        const problems = checkProfiles(ctx.dataDir().root, env, nodes);
        if (problems.length > 0) {
          for (const p of problems) ctx.err(formatProblem(p));
          ctx.err(`${problems.length} problem${problems.length === 1 ? '' : 's'}`);
          ctx.setExitCode(1);
          return;
        }
        const profiles = loadRenderSet(ctx.dataDir().root, env).profiles.length;
        ctx.out(`ok: ${nodes.length} nodes, ${profiles} profiles`);
      });
  };
}

/** `profile render|check` with the data dir's image store. */
export const profileCommand: CommandModule = makeProfileCommand();

/**
 * The facts `image remove|prune|list` judge usage by: every profile's and
 * node's image reference, the nodes being installed (with the exact version
 * their kickstart named) and what each node was last installed with. Fails
 * closed: when the profiles do not load, nobody can say an image is unused, so
 * this is an UnavailableError naming the first problem.
 */
export function imageUsage(ctx: CliContext): ImageUsageFacts {
  const env = cliRenderEnv(ctx);
  const res = loadRenderSet(ctx.dataDir().root, env);
  if (!res.set) {
    const p = res.problems[0];
    throw new UnavailableError(
      `cannot tell which images are in use: the profiles do not load (${p ? `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}` : 'unknown problem'}); fix them (kickswarm profile check) and try again`,
    );
  }
  const facts: ImageUsageFacts = { wants: [], installing: [], installed: [] };
  for (const [pname, p] of res.set.profiles) if (p.image) facts.wants.push({ who: `profile ${pname}`, ref: p.image.name });
  const inv = ctx.inventory();
  for (const n of inv.listNodes()) {
    const ref = res.set.attributes(env, n)['image.name'];
    if (ref) facts.wants.push({ who: `node ${n.name}`, ref });
    const img = lastInstalledImage(inv, n);
    if (n.bootAction === 'install') {
      const served = servedImage(inv, n.name);
      if (served && (!img || img.at < served.at)) facts.installing.push({ node: n.name, ref: served.ref });
    }
    if (img) facts.installed.push({ node: n.name, ref: img.ref, sha256: img.sha256, at: img.at });
  }
  return facts;
}

/** Who uses `ref` (a whole image, or one version); fails closed like imageUsage. */
export function imageUsers(ctx: CliContext, ref: ImageRef): string[] {
  const store = new ImageStore(ctx.dataDir().images);
  return usersOf(imageUsage(ctx), ref, (name) => {
    try {
      return store.versions(name).current;
    } catch {
      return undefined;
    }
  });
}
