/**
 * `kickswarm image list [--json]`: every image with its versions, the current
 * one marked, who uses each version and which nodes were last installed with it.
 *
 * JSON: one object per image, sorted by name. Its top-level fields are those
 * of the current version (`name`, `rawSize`, `sha256`, ... as before versions
 * existed) plus `current` (version number) and `versions` (oldest first), each
 * a version's metadata plus `current` (boolean), `usedBy` (profiles, nodes and
 * running installs using it; null when usage cannot be known) and
 * `installedOn` (nodes last installed with exactly this version).
 */
import type { ImageMeta, ImageVersions } from '../images/store.js';
import { type CurrentOf, type ImageUsageFacts, installedWith, usersOf } from '../images/usage.js';
import { humanBytes, json, table } from './format.js';

export interface VersionListing extends ImageMeta {
  current: boolean;
  usedBy: string[] | null;
  installedOn: string[];
}

export interface ImageListing extends Omit<ImageMeta, 'version'> {
  version: number;
  current: number;
  versions: VersionListing[];
}

/** Joins store contents with usage facts (`facts` undefined: usage unknown). */
export function imageListing(images: ImageVersions[], facts?: ImageUsageFacts, currentOf?: CurrentOf): ImageListing[] {
  const cur: CurrentOf = currentOf ?? ((name) => images.find((i) => i.name === name)?.current);
  return images.map((i) => {
    const head = i.versions.find((m) => m.version === i.current)!;
    return {
      ...head,
      current: i.current,
      versions: i.versions.map((m) => ({
        ...m,
        current: m.version === i.current,
        usedBy: facts ? usersOf(facts, { name: m.name as never, version: m.version, ref: m.ref }, cur) : null,
        installedOn: facts ? installedWith(facts, m.ref) : [],
      })),
    };
  });
}

function names(list: string[], max = 3): string {
  if (list.length === 0) return '-';
  return list.length <= max ? list.join(',') : `${list.slice(0, max).join(',')} +${list.length - max}`;
}

/** The listing as a table (one row per version, human sizes) or JSON (bytes). */
export function formatImageList(images: ImageListing[], asJson: boolean): string {
  if (asJson) return json(images);
  if (images.length === 0) return 'no images (add one with: kickswarm image add FILE --name NAME)';
  return table(
    ['NAME', 'VERSION', 'CURRENT', 'RAW', 'STORED', 'CHUNKS', 'SHA256', 'CREATED', 'USED BY', 'INSTALLED ON'],
    images.flatMap((i) =>
      i.versions.map((m) => [
        m.name,
        String(m.version),
        m.current ? '*' : '',
        humanBytes(m.rawSize),
        humanBytes(m.storedSize),
        `${m.storedChunks}/${m.chunkCount}`,
        m.sha256.slice(0, 16),
        m.createdAt.replace(/\.\d+Z$/, 'Z'),
        m.usedBy === null ? '?' : names(m.usedBy, 2),
        names(m.installedOn),
      ]),
    ),
  );
}
