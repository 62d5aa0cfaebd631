/**
 * Editing profiles and templates through the frontend (the dashboard's editor):
 * list and read the files, preview an edit (render a node's kickstart and
 * pxelinux config from the files as they would be, and `profile check` every
 * node), and save one atomically, refusing a save that breaks any render
 * unless the admin insists. A forced broken save is exactly an edit on disk:
 * the running server keeps serving the last good set.
 *
 * A preview works on a copy of `profiles/` and `templates/` in a temporary
 * folder with the edit applied, loaded by the same loader the server uses.
 * Checking every node runs in slices (../slices.ts): a 10,000-node check takes
 * seconds, during which the server keeps answering everything else.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import type { BootAction } from '../../protocol/node.js';
import type { NodeRecord } from '../inventory/types.js';
import { maskSecrets } from '../cluster/served-kickstart.js';
import { type CheckProblem, checkProfilesInSlices } from './check.js';
import { loadRenderSet, problemFrom } from './renderset.js';
import type { RenderEnv } from './types.js';

/** Largest file the editor reads or writes. */
export const MAX_EDIT_BYTES = 256 * 1024;

const EDITABLE = /^(profiles\/[A-Za-z0-9][A-Za-z0-9._-]*\.yaml|templates\/(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)*[A-Za-z0-9][A-Za-z0-9._-]*\.hbs)$/;

/** Validates an editable path (`profiles/NAME.yaml` or `templates/.../NAME.hbs`, no `..`). */
export function parseEditPath(input: string): string {
  if (input.length > 300 || !EDITABLE.test(input) || input.split('/').some((s) => s === '..' || s.startsWith('.'))) {
    throw new InvalidInputError(`not an editable file: ${JSON.stringify(input.slice(0, 80))} (want profiles/NAME.yaml or templates/PATH.hbs)`);
  }
  return input;
}

function walk(root: string, rel: string, out: string[]): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory() && !e.name.startsWith('.')) walk(root, p, out);
    else if (e.isFile() && EDITABLE.test(p)) out.push(p);
  }
}

/** Every editable file of the data dir, sorted. */
export function listEditable(root: string): string[] {
  const out: string[] = [];
  walk(root, 'profiles', out);
  walk(root, 'templates', out);
  return out.sort();
}

export function readEditable(root: string, rel: string): string {
  const p = path.join(root, parseEditPath(rel));
  try {
    const st = fs.statSync(p);
    if (st.size > MAX_EDIT_BYTES) throw new InvalidInputError(`${rel} is larger than ${MAX_EDIT_BYTES} bytes`);
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no file ${rel}`);
    throw e;
  }
}

/** Runs `fn` on a temporary copy of the data dir's profiles and templates with `edit` applied. */
async function withEditedCopy<T>(root: string, edit: { path: string; text: string }, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-edit-'));
  try {
    fs.cpSync(path.join(root, 'profiles'), path.join(dir, 'profiles'), { recursive: true });
    fs.cpSync(path.join(root, 'templates'), path.join(dir, 'templates'), { recursive: true });
    const target = path.join(dir, edit.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, edit.text);
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface PreviewResult {
  /** The node previewed, when one was given. */
  node: string | null;
  /** Its kickstart from the edited files (secrets masked), or null when it does not render. */
  kickstart: string | null;
  /** Its pxelinux config for `pxeAction` (default its boot action, `install` when that is `os`). */
  pxelinux: string | null;
  pxeAction: BootAction | null;
  /** `profile check` of every node against the edited files. */
  problems: CheckProblem[];
  nodesChecked: number;
}

/** Renders and checks the files as they would be after `edit`; changes nothing on disk. */
export function previewEdit(root: string, env: RenderEnv, nodes: NodeRecord[], edit: { path: string; text: string }, node?: NodeRecord): Promise<PreviewResult> {
  parseEditPath(edit.path);
  return withEditedCopy(root, edit, async (dir) => {
    const problems = await checkProfilesInSlices(dir, env, nodes);
    const res: PreviewResult = { node: node?.name ?? null, kickstart: null, pxelinux: null, pxeAction: null, problems, nodesChecked: nodes.length };
    if (!node) return res;
    const loaded = loadRenderSet(dir, env);
    if (!loaded.set) return res;
    const set = loaded.set;
    let attrs: Record<string, string> = node.attrs;
    try {
      attrs = set.attributes(env, node);
    } catch {
      // masking falls back to the node's own attributes
    }
    try {
      res.kickstart = maskSecrets(set.kickstart(env, node), attrs);
    } catch (e) {
      const p = problemFrom(e, `profiles/${node.appliance}.yaml`);
      if (!problems.some((q) => q.node === node.name && q.message === p.message)) problems.unshift({ node: node.name, ...p });
    }
    res.pxeAction = node.bootAction === 'os' ? 'install' : node.bootAction;
    try {
      res.pxelinux = maskSecrets(set.pxelinux(env, node, res.pxeAction), attrs);
    } catch {
      // already among the check's problems
    }
    return res;
  });
}

export interface SaveResult {
  saved: boolean;
  path: string;
  /** Problems the edit would bring (refused unless forced) or brought (forced). */
  problems: CheckProblem[];
  forced: boolean;
}

function key(p: CheckProblem): string {
  return `${p.node ?? ''}\u0000${p.file}\u0000${p.message}`;
}

/**
 * Saves `edit` atomically (write a temporary file beside it, rename) unless it
 * brings render problems the files on disk do not already have; with `force`
 * it is saved anyway (the server then keeps serving its last good set). The
 * edited files are checked first; the files on disk only when that found
 * problems, and then only for the nodes it found them for (the set-wide
 * problems, loading and DHCP over every node, are compared whole).
 */
export async function saveEdit(root: string, env: RenderEnv, nodes: NodeRecord[], edit: { path: string; text: string }, force: boolean): Promise<SaveResult> {
  const rel = parseEditPath(edit.path);
  if (Buffer.byteLength(edit.text) > MAX_EDIT_BYTES) throw new InvalidInputError(`${rel}: larger than ${MAX_EDIT_BYTES} bytes`);
  const after = await withEditedCopy(root, { path: rel, text: edit.text }, (dir) => checkProfilesInSlices(dir, env, nodes));
  const failing = new Set(after.flatMap((p) => (p.node === undefined ? [] : [p.node])));
  const before = new Set(after.length === 0 ? [] : (await checkProfilesInSlices(root, env, nodes, { only: failing })).map(key));
  const brought = after.filter((p) => !before.has(key(p)));
  if (brought.length > 0 && !force) return { saved: false, path: rel, problems: brought, forced: false };
  const target = path.join(root, rel);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, edit.text);
  fs.renameSync(tmp, target);
  return { saved: true, path: rel, problems: brought, forced: brought.length > 0 };
}
