/** `kickswarm profile check`: a fresh load from disk, then every node rendered. */
import { BOOT_ACTIONS } from '../../protocol/node.js';
import type { NodeRecord } from '../inventory/types.js';
import { runInSlices, runNow } from '../slices.js';
import { DHCP_FORMATS, loadRenderSet, problemFrom } from './renderset.js';
import type { RenderEnv, TemplateProblem } from './types.js';

/** A problem found by checkProfiles; `node` is set when it concerns one node's render. */
export interface CheckProblem extends TemplateProblem {
  node?: string;
}

/**
 * Loads `<dataDirRoot>/profiles` and `templates` fresh (ignoring any running
 * server's state) and renders, for every node, its kickstart and its pxelinux
 * configs for every boot action, then both DHCP formats over all nodes. A set
 * that does not load returns its load problems only. One problem per failure;
 * an empty list means every node renders.
 */
export function checkProfiles(dataDirRoot: string, env: RenderEnv, nodes: NodeRecord[]): CheckProblem[] {
  return runNow(checkJob(dataDirRoot, env, nodes));
}

export interface CheckOptions {
  /** Render only these nodes one by one (DHCP still renders over all of them). */
  only?: ReadonlySet<string>;
}

/** checkProfiles for a server: the same check, run in slices that let other requests through (../slices.ts). */
export function checkProfilesInSlices(dataDirRoot: string, env: RenderEnv, nodes: NodeRecord[], opts: CheckOptions = {}): Promise<CheckProblem[]> {
  return runInSlices(checkJob(dataDirRoot, env, nodes, opts));
}

/** The check as a job that yields after every node. */
function* checkJob(dataDirRoot: string, env: RenderEnv, nodes: NodeRecord[], opts: CheckOptions = {}): Generator<void, CheckProblem[]> {
  const loaded = loadRenderSet(dataDirRoot, env);
  if (!loaded.set) return loaded.problems;
  const set = loaded.set;
  const problems: CheckProblem[] = [];
  for (const node of nodes) {
    if (opts.only && !opts.only.has(node.name)) continue;
    const profileFile = `profiles/${node.appliance}.yaml`;
    const renders: [string, () => unknown][] = [
      [profileFile, () => set.kickstart(env, node)],
      ...BOOT_ACTIONS.map((a): [string, () => unknown] => [`templates/pxelinux/${a}.hbs`, () => set.pxelinux(env, node, a)]),
    ];
    for (const [file, render] of renders) {
      try {
        render();
      } catch (e) {
        const p = problemFrom(e, file);
        problems.push({ node: node.name, ...p });
      }
    }
    yield;
  }
  for (const f of DHCP_FORMATS) {
    try {
      set.dhcp(env, f, nodes);
    } catch (e) {
      problems.push(problemFrom(e, `templates/dhcp/${f}.hbs`));
    }
    yield;
  }
  return problems;
}

/** One line per problem: `node N: file:line: message`. */
export function formatProblem(p: CheckProblem): string {
  return `${p.node ? `node ${p.node}: ` : ''}${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}`;
}
