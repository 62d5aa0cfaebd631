/**
 * Who uses which image version: pure answers over facts the caller gathers
 * (profiles' and nodes' image references, running installs, last installs).
 *
 * A profile or node naming `NAME` uses NAME's current version; naming
 * `NAME@N` pins version N. A node being installed uses the exact version its
 * kickstart named (it is still downloading it), whatever is current now.
 */
import { type ImageRef, parseImageRef } from '../../protocol/node.js';

export interface ImageUsageFacts {
  /** Profiles and nodes with the image reference they render with (`who` e.g. `profile compute`, `node c0-1`). */
  wants: { who: string; ref: string }[];
  /** Nodes whose install is under way, with the exact version their kickstart named. */
  installing: { node: string; ref: string }[];
  /** Per node, the exact version and SHA-256 it was last installed with. */
  installed: { node: string; ref: string; sha256: string; at: string }[];
}

/** The current version number of an image name (undefined when unknown). */
export type CurrentOf = (name: string) => number | undefined;

function parsed(ref: string): ImageRef | undefined {
  try {
    return parseImageRef(ref);
  } catch {
    return undefined;
  }
}

/**
 * Users of `target`: of a whole image when it has no version (anyone naming
 * it in any form), else of exactly that version.
 */
export function usersOf(facts: ImageUsageFacts, target: ImageRef, currentOf: CurrentOf): string[] {
  const users: string[] = [];
  const matches = (ref: string): boolean => {
    const r = parsed(ref);
    if (!r || r.name !== target.name) return false;
    if (target.version === undefined) return true;
    return (r.version ?? currentOf(r.name)) === target.version;
  };
  for (const w of facts.wants) if (matches(w.ref)) users.push(`${w.who}${w.ref !== target.ref ? ` (${w.ref})` : ''}`);
  for (const i of facts.installing) if (matches(i.ref)) users.push(`node ${i.node} (installing ${i.ref})`);
  return users;
}

/** Nodes last installed with exactly `ref` (`NAME@N`). */
export function installedWith(facts: ImageUsageFacts, ref: string): string[] {
  return facts.installed.filter((i) => i.ref === ref).map((i) => i.node);
}
