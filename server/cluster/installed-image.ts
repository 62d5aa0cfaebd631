/**
 * Which exact image version a node was installed with. The kickstart route
 * notes the image its kickstart named (`image` and `sha256` in the data of the
 * `kickstart` 200 event); when the install ends well (a `done` report, or the
 * node flipping itself from `install` to `os`), that version becomes the
 * node's `install.image` and an `image` event in its history. `install.image`
 * outlives later installs until one of them succeeds; where the progress was
 * cleared (a `reinstall` starts from nothing), the latest `image` event answers.
 */
import { parseKickstart } from '../../protocol/kickstart.js';
import type { NodeName } from '../../protocol/node.js';
import type { Inventory } from '../inventory/store.js';
import type { InstalledImage, NodeRecord } from '../inventory/types.js';

export interface ServedImage {
  ref: string;
  sha256: string;
  /** When the kickstart naming it was served (ISO 8601). */
  at: string;
}

/** The image directive of a rendered kickstart, as event data (none when it names no image). */
export function kickstartImageData(text: string): { image: string; sha256: string } | Record<string, never> {
  try {
    const img = parseKickstart(text).image;
    return img?.sha256 ? { image: img.name, sha256: img.sha256 } : {};
  } catch {
    return {};
  }
}

/** The image the node's latest served kickstart named, from its recent events. */
export function servedImage(inventory: Inventory, name: NodeName): ServedImage | undefined {
  const events = inventory.events(name, 100);
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.kind !== 'kickstart' || e.data?.status !== 200) continue;
    const ref = e.data.image;
    const sha256 = e.data.sha256;
    return typeof ref === 'string' && typeof sha256 === 'string' ? { ref, sha256, at: e.at } : undefined;
  }
  return undefined;
}

/**
 * The `install.image` the node should now have after a successful install,
 * or undefined when it has nothing new (no served image, or already noted).
 */
export function newlyInstalledImage(inventory: Inventory, node: NodeRecord, now: Date): InstalledImage | undefined {
  const served = servedImage(inventory, node.name);
  if (!served) return undefined;
  const have = node.install?.image;
  if (have && have.ref === served.ref && have.at >= served.at) return undefined;
  return { ref: served.ref, sha256: served.sha256, at: now.toISOString() };
}

/** The history line for an installed image. */
export function installedImageEvent(img: InstalledImage): { message: string; data: Record<string, unknown> } {
  return { message: `installed image ${img.ref} (sha256 ${img.sha256})`, data: { image: img.ref, sha256: img.sha256 } };
}

/** The exact version the node was last installed with: its `install.image`, else its latest `image` event. */
export function lastInstalledImage(inventory: Inventory, node: NodeRecord): InstalledImage | undefined {
  if (node.install?.image) return node.install.image;
  const events = inventory.events(node.name, 200);
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.kind === 'image' && typeof e.data?.image === 'string' && typeof e.data.sha256 === 'string') return { ref: e.data.image, sha256: e.data.sha256, at: e.at };
  }
  return undefined;
}
