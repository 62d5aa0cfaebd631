/**
 * `kickswarm profile render NAME` prints exactly the kickstart kickstart.cgi
 * serves that node; `kickswarm profile check` renders every node from the files
 * on disk and prints one line per failure (exit 1) or `ok: N nodes, M profiles`.
 */
import { TemplateError } from '../../protocol/errors.js';
import { parseNodeName } from '../../protocol/node.js';
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
  return (name) => {
    if (!store.has(name)) return undefined;
    const m = store.get(name);
    return { name: m.name, sha256: m.sha256, rawSize: m.rawSize };
  };
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
  const first = res.problems[0]!;
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
 * Who uses image `name`: every profile whose (inherited) image it is, and every
 * node whose merged attributes name it. Fails closed: when the profiles do not
 * load, nobody can tell, so it throws (the TemplateError of the first problem)
 * rather than answer "nobody" and let `image remove` delete an image in use.
 */
export function imageUsers(ctx: CliContext, name: string): string[] {
  const env = cliRenderEnv(ctx);
  const res = loadRenderSet(ctx.dataDir().root, env);
  if (!res.set) {
    const first = res.problems[0];
    throw new TemplateError(first?.file ?? 'profiles', first?.line, `cannot tell whether image ${name} is in use: the profiles do not load (${first?.message ?? 'unknown problem'}); fix them first (kickswarm profile check)`);
  }
  const users: string[] = [];
  for (const [pname, p] of res.set.profiles) if (p.image?.name === name) users.push(`profile ${pname}`);
  for (const n of ctx.inventory().listNodes()) {
    try {
      if (res.set.imageFor(env, n)?.name === name) users.push(`node ${n.name}`);
    } catch {
      // a node whose profile does not render uses no image we can name
    }
  }
  return users;
}
