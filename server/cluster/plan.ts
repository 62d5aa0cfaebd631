/**
 * The reinstall plan: before anything changes, what each selected node would
 * get (profile, template, image), whether its kickstart differs from the one
 * it was last served (with a unified diff, secrets masked) and which nodes
 * would fail to render and why. Pure reads: nothing is changed.
 */
import { createTwoFilesPatch } from 'diff';
import type { NodeName } from '../../protocol/node.js';
import type { ServedKickstart } from '../inventory/install-records.js';
import type { NodeRecord } from '../inventory/types.js';
import { problemFrom } from '../render/renderset.js';
import { kickstartHash, maskSecrets } from './served-kickstart.js';
import { runInSlices, runNow } from '../slices.js';

export interface PlanRenderer {
  kickstart(node: NodeRecord): string;
  attributes(node: NodeRecord): Record<string, string>;
  imageFor(node: NodeRecord): { name: string; method: string } | undefined;
  describe(node: NodeRecord): { profile: string; template: string };
}

export interface PlanInventory {
  servedKickstart(name: NodeName): ServedKickstart | undefined;
}

/** `new`: never served one; `same`/`changed`: against the last one served; `fails`: does not render. */
export type KickstartChange = 'new' | 'same' | 'changed' | 'fails';

export interface PlanEntry {
  name: string;
  appliance: string;
  rack: number | null;
  bootAction: string;
  profile: string | null;
  template: string | null;
  image: string | null;
  method: string | null;
  kickstart: KickstartChange;
  /** When the last kickstart was served. */
  lastServedAt: string | null;
  /** Unified diff last served -> now (secrets masked), for `changed` (the first `maxDiffs` only). */
  diff?: string;
  error?: { file: string; line?: number; message: string };
}

export interface ReinstallPlan {
  nodes: PlanEntry[];
  counts: Record<KickstartChange, number>;
  /** True when every node renders. */
  ok: boolean;
}

export function planReinstall(nodes: NodeRecord[], renderer: PlanRenderer, inventory: PlanInventory, opts: { maxDiffs?: number } = {}): ReinstallPlan {
  return runNow(planJob(nodes, renderer, inventory, opts));
}

/** planReinstall for a server: rendered in slices that let other requests through (../slices.ts). */
export function planReinstallInSlices(nodes: NodeRecord[], renderer: PlanRenderer, inventory: PlanInventory, opts: { maxDiffs?: number } = {}): Promise<ReinstallPlan> {
  return runInSlices(planJob(nodes, renderer, inventory, opts));
}

/** The plan as a job that yields after every node. */
function* planJob(nodes: NodeRecord[], renderer: PlanRenderer, inventory: PlanInventory, opts: { maxDiffs?: number }): Generator<void, ReinstallPlan> {
  const maxDiffs = opts.maxDiffs ?? 200;
  const counts: Record<KickstartChange, number> = { new: 0, same: 0, changed: 0, fails: 0 };
  let diffs = 0;
  const entries: PlanEntry[] = [];
  for (const n of nodes) {
    const e: PlanEntry = {
      name: n.name,
      appliance: n.appliance,
      rack: n.rack,
      bootAction: n.bootAction,
      profile: null,
      template: null,
      image: null,
      method: null,
      kickstart: 'fails',
      lastServedAt: null,
    };
    const last = inventory.servedKickstart(n.name);
    e.lastServedAt = last?.at ?? null;
    try {
      const d = renderer.describe(n);
      e.profile = d.profile;
      e.template = `templates/${d.template}`;
      const img = renderer.imageFor(n);
      e.image = img?.name ?? null;
      e.method = img?.method ?? null;
      const text = renderer.kickstart(n);
      if (!last) e.kickstart = 'new';
      else if (last.sha256 === kickstartHash(text)) e.kickstart = 'same';
      else {
        e.kickstart = 'changed';
        if (diffs++ < maxDiffs) {
          const masked = maskSecrets(text, renderer.attributes(n));
          e.diff = createTwoFilesPatch(`${n.name} (served ${last.at})`, `${n.name} (now)`, last.text, masked, undefined, undefined, { context: 3 });
        }
      }
    } catch (err) {
      e.kickstart = 'fails';
      e.error = problemFrom(err, `profiles/${n.appliance}.yaml`);
    }
    counts[e.kickstart]++;
    entries.push(e);
    yield;
  }
  return { nodes: entries, counts, ok: counts.fails === 0 };
}
