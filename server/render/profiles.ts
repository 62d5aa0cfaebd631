/**
 * Profiles: `profiles/<appliance>.yaml`, one per appliance, validated with zod
 * and resolved along their `extends` chain (base first), like the ROCKS graph
 * reduced to single inheritance. Every problem names the file (relative to the
 * data dir) and, when it can be placed, the line.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isPair, isScalar, LineCounter, type Document } from 'yaml';
import { z } from 'zod';
import { isImageRef, parseAttrKey, parseSimpleName } from '../../protocol/node.js';
import { isSecretPath, type SecretFile } from '../../protocol/session.js';
import type { TemplateProblem } from './types.js';

export const IMAGE_METHODS = ['torrent', 'multicast', 'http'] as const;
export type ImageMethod = (typeof IMAGE_METHODS)[number];

/** One `%pre` / `%post` entry: a snippet name and the section options written after it. */
export interface SectionRef {
  name: string;
  /** e.g. `--nochroot --interpreter /bin/bash`; empty when none. */
  options: string;
}

export interface ProfileImage {
  name: string;
  method: ImageMethod;
  target: string;
}

/** A profile with its whole `extends` chain folded in. */
export interface ResolvedProfile {
  name: string;
  /** `profiles/<name>.yaml`. */
  file: string;
  /** Profile names, base first, ending with this one. */
  chain: string[];
  description: string;
  /** Profile-chain attributes (parents first, children override). */
  attributes: Record<string, string>;
  /** Kickstart template path relative to `templates/`. */
  template: string;
  /** The image the profile installs, and which profile file declared it. */
  image: (ProfileImage & { declaredIn: string }) | null;
  packages: string[];
  pre: SectionRef[];
  post: SectionRef[];
  /**
   * Files the installer writes into the installed root after the image, handed
   * out once per install session (secrets.cgi), never in the kickstart. Merged
   * by path along the chain (the child wins).
   */
  secrets: SecretFile[];
}

const SECTION_OPTION = /^(--nochroot|--erroronfail|--interpreter[= ]\/[\w./-]+|--log[= ]\/[\w./-]+)$/;

const sectionEntry = z.string().refine(
  (s) => {
    const [name, ...rest] = s.trim().split(/\s+/);
    if (!name || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return false;
    return splitOptions(rest.join(' ')).every((o) => SECTION_OPTION.test(o));
  },
  { message: 'want "<snippet> [--nochroot] [--erroronfail] [--interpreter /path] [--log /path]"' },
);

const ProfileFileSchema = z
  .object({
    description: z.string().optional(),
    extends: z.string().optional(),
    attributes: z.record(z.string(), z.string({ message: 'attribute values must be strings (quote numbers and booleans)' })).optional(),
    template: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9._/-]*\.hbs$/, 'want a path under templates/ ending in .hbs')
      .refine((s) => !s.split('/').includes('..'), 'must stay inside templates/')
      .optional(),
    image: z
      .object({
        name: z.string().refine(isImageRef, 'want an image name (letters, digits, ".", "_", "-"), optionally @VERSION'),
        method: z.enum(IMAGE_METHODS).default('torrent'),
        target: z
          .string()
          .regex(/^\/[\w./-]+$/, 'want an absolute device or file path')
          .default('/dev/sda'),
      })
      .strict()
      .nullable()
      .optional(),
    packages: z.array(z.string().regex(/^[^\s#%]+$/, 'one package or @group per entry')).optional(),
    pre: z.array(sectionEntry).optional(),
    post: z.array(sectionEntry).optional(),
    secrets: z
      .array(
        z
          .object({
            path: z.string().refine(isSecretPath, 'want an absolute path inside the installed root (no "..")'),
            mode: z
              .string()
              .regex(/^0?[0-7]{3}$/, 'want octal permissions such as "0600" (quoted)')
              .default('0600'),
            content: z.string(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

type ProfileFile = z.infer<typeof ProfileFileSchema>;

interface ParsedProfile {
  name: string;
  file: string;
  data: ProfileFile;
  /** Line of a top-level key, for problems found after parsing. */
  lineOfKey(key: string): number | undefined;
}

function splitOptions(s: string): string[] {
  const out: string[] = [];
  const parts = s.trim().split(/\s+/).filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if ((p === '--interpreter' || p === '--log') && i + 1 < parts.length) out.push(`${p} ${parts[++i]}`);
    else out.push(p);
  }
  return out;
}

function parseSectionRef(entry: string): SectionRef {
  const [name, ...rest] = entry.trim().split(/\s+/);
  return { name: name!, options: splitOptions(rest.join(' ')).join(' ') };
}

/** Line (1-based) of the node at `p` inside `doc`, falling back to the nearest ancestor. */
function lineAt(doc: Document, lc: LineCounter, p: PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined = node && (node as { range?: number[] }).range ? lc.linePos((node as { range: number[] }).range[0]!).line : undefined;
  for (const seg of p) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) break;
      const key = pair.key as { range?: number[] };
      if (key.range) line = lc.linePos(key.range[0]!).line;
      node = pair.value;
    } else if (node && typeof node === 'object' && 'items' in node && typeof seg === 'number') {
      node = (node as { items: unknown[] }).items[seg];
      const r = (node as { range?: number[] } | undefined)?.range;
      if (r) line = lc.linePos(r[0]!).line;
    } else break;
  }
  return line;
}

function parseProfileFile(dir: string, fileName: string, problems: TemplateProblem[]): ParsedProfile | undefined {
  const name = fileName.replace(/\.yaml$/, '');
  const file = `profiles/${fileName}`;
  try {
    parseSimpleName(name, 'profile name');
  } catch (e) {
    problems.push({ file, message: (e as Error).message });
    return undefined;
  }
  const lc = new LineCounter();
  const doc = YAML.parseDocument(fs.readFileSync(path.join(dir, fileName), 'utf8'), { lineCounter: lc });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) problems.push({ file, line: e.linePos?.[0]?.line, message: `YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
    return undefined;
  }
  const raw: unknown = doc.toJS() ?? {};
  const res = ProfileFileSchema.safeParse(raw);
  if (!res.success) {
    for (const issue of res.error.issues) {
      const keys = (issue as { keys?: string[] }).keys;
      const at = keys?.length ? [...issue.path, keys[0]!] : issue.path;
      const where = issue.path.map(String).join('.');
      const message = keys?.length
        ? `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}${where ? ` in ${where}` : ` (allowed: ${Object.keys(ProfileFileSchema.shape).join(', ')})`}`
        : `${where || '(top level)'}: ${issue.message}`;
      problems.push({ file, line: lineAt(doc, lc, at), message });
    }
    return undefined;
  }
  for (const key of Object.keys(res.data.attributes ?? {})) {
    try {
      parseAttrKey(key);
    } catch (e) {
      problems.push({ file, line: lineAt(doc, lc, ['attributes', key]), message: (e as Error).message });
      return undefined;
    }
  }
  return { name, file, data: res.data, lineOfKey: (k) => lineAt(doc, lc, [k]) };
}

function dedupe<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => (seen.has(key(t)) ? false : (seen.add(key(t)), true)));
}

/**
 * Reads every `*.yaml` in `profilesDir` and resolves inheritance. Attributes,
 * `template`, `image` and `description` are inherited (the child wins);
 * `packages`, `pre` and `post` concatenate base first, de-duplicated (first
 * occurrence wins). `image: null` drops an inherited image. An unknown parent or
 * an `extends` cycle is a problem naming the profile's file and line.
 */
export function loadProfiles(profilesDir: string): { profiles: Map<string, ResolvedProfile>; problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  const parsed = new Map<string, ParsedProfile>();
  let names: string[] = [];
  try {
    names = fs
      .readdirSync(profilesDir)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
  } catch (e) {
    problems.push({ file: 'profiles', message: `cannot read the profiles folder: ${(e as Error).message}` });
  }
  for (const f of names) {
    const p = parseProfileFile(profilesDir, f, problems);
    if (p) parsed.set(p.name, p);
  }
  const profiles = new Map<string, ResolvedProfile>();
  for (const p of parsed.values()) {
    const chain: ParsedProfile[] = [];
    let cur: ParsedProfile | undefined = p;
    let failed = false;
    while (cur) {
      if (chain.includes(cur)) {
        const names = [...chain, cur].map((c) => c.name).join(' -> ');
        problems.push({ file: p.file, line: p.lineOfKey('extends'), message: `extends cycle: ${names}` });
        failed = true;
        break;
      }
      chain.push(cur);
      const parent = cur.data.extends;
      if (parent === undefined) break;
      const next = parsed.get(parent);
      if (!next) {
        if (cur === p) {
          const exists = names.includes(`${parent}.yaml`);
          problems.push({
            file: p.file,
            line: p.lineOfKey('extends'),
            message: exists ? `extends ${parent}, which has errors` : `extends unknown profile ${JSON.stringify(parent)} (no profiles/${parent}.yaml)`,
          });
        }
        failed = true;
        break;
      }
      cur = next;
    }
    if (failed) continue;
    profiles.set(p.name, resolve(p, chain.reverse()));
  }
  return { profiles, problems };
}

function resolve(p: ParsedProfile, chain: ParsedProfile[]): ResolvedProfile {
  const r: ResolvedProfile = {
    name: p.name,
    file: p.file,
    chain: chain.map((c) => c.name),
    description: '',
    attributes: {},
    template: 'kickstart.hbs',
    image: null,
    packages: [],
    pre: [],
    post: [],
    secrets: [],
  };
  const secrets = new Map<string, SecretFile>();
  for (const c of chain) {
    const d = c.data;
    if (d.description !== undefined) r.description = d.description;
    Object.assign(r.attributes, d.attributes ?? {});
    if (d.template !== undefined) r.template = d.template;
    if (d.image === null) r.image = null;
    else if (d.image) r.image = { ...d.image, declaredIn: c.file };
    r.packages.push(...(d.packages ?? []));
    r.pre.push(...(d.pre ?? []).map(parseSectionRef));
    r.post.push(...(d.post ?? []).map(parseSectionRef));
    for (const f of d.secrets ?? []) secrets.set(f.path, { path: f.path, mode: f.mode, content: f.content });
  }
  r.secrets = [...secrets.values()];
  r.packages = dedupe(r.packages, (s) => s);
  r.pre = dedupe(r.pre, (s) => s.name);
  r.post = dedupe(r.post, (s) => s.name);
  return r;
}
