/**
 * One loaded, validated set of profiles and templates, and the renders it
 * answers. A set is only accepted when every template compiles AND every
 * profile renders (kickstart and pxelinux) against a synthetic sample node, so
 * strict-mode mistakes surface at load time, never at a node's boot.
 */
import path from 'node:path';
import { InvalidInputError, KickswarmError, NotFoundError, TemplateError } from '../../protocol/errors.js';
import { type Ipv4, type Mac, type NodeName } from '../../protocol/node.js';
import type { SecretFile } from '../../protocol/session.js';
import type { NodeRecord } from '../inventory/types.js';
import { buildContext, buildDhcpContext, dhcpSubnet, imageFromAttributes, mergeAttributes } from './context.js';
import { loadProfiles, type ResolvedProfile } from './profiles.js';
import { loadTemplates, problemOf, toTemplateError, type TemplateSet } from './templates.js';
import type { PxeMode, RenderEnv, TemplateProblem } from './types.js';

export const PXE_MODES: readonly PxeMode[] = ['install', 'os', 'capture', 'default', 'discover'];
/** iPXE scripts: the boot actions and discovery; an unknown MAC without discovery is a 404, not a script. */
export const IPXE_MODES: readonly PxeMode[] = ['install', 'os', 'capture', 'discover'];
export const DHCP_FORMATS = ['dnsmasq', 'isc'] as const;
export type DhcpFormat = (typeof DHCP_FORMATS)[number];

/** Templates every set must have besides the kickstart templates its profiles name. */
/** A token of the right shape, so templates are also checked with their `session.token` branch taken. */
const SAMPLE_SESSION = 'S'.repeat(43);

export const REQUIRED_TEMPLATES = [...PXE_MODES.map((m) => `pxelinux/${m}.hbs`), ...IPXE_MODES.map((m) => `ipxe/${m}.hbs`), ...DHCP_FORMATS.map((f) => `dhcp/${f}.hbs`)];

const SECTION_START = /^%(packages|pre|post|addon|onerror|traceback|pre-install)\b/;

/**
 * Anaconda structure of a rendered kickstart: commands first, then sections,
 * each closed by `%end` before the next starts. Throws TemplateError naming `file`.
 */
export function checkKickstartStructure(text: string, file: string): void {
  let open: { name: string; line: number } | null = null;
  let sawSection = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const start = SECTION_START.exec(l);
    const fail = (msg: string) => new TemplateError(file, undefined, `rendered kickstart line ${i + 1}: ${msg}`);
    if (start) {
      if (open) throw fail(`%${start[1]} starts before %${open.name} (line ${open.line}) is closed by %end`);
      open = { name: start[1]!, line: i + 1 };
      sawSection = true;
    } else if (/^%end\s*$/.test(l)) {
      if (!open) throw fail('%end without an open section');
      open = null;
    } else if (!open && sawSection && l.trim() !== '' && !l.trimStart().startsWith('#')) {
      throw fail(`command ${JSON.stringify(l.trim().slice(0, 40))} after the first section (commands come first)`);
    }
  }
  if (open) throw new TemplateError(file, undefined, `rendered kickstart: %${open.name} (line ${open.line}) is never closed by %end`);
}

export class RenderSet {
  constructor(
    readonly profiles: Map<string, ResolvedProfile>,
    readonly templates: TemplateSet,
  ) {}

  /** The profile for a node's appliance; NotFoundError when there is none. */
  profileFor(node: NodeRecord): ResolvedProfile {
    const p = this.profiles.get(node.appliance);
    if (!p) {
      throw new NotFoundError(`no profile for appliance ${JSON.stringify(node.appliance)} of node ${node.name} (profiles/${node.appliance}.yaml)`, {
        node: node.name,
        appliance: node.appliance,
      });
    }
    return p;
  }

  kickstart(env: RenderEnv, node: NodeRecord): string {
    const profile = this.profileFor(node);
    const ctx = buildContext(env, node, profile, { resolveImage: true });
    const file = `templates/${profile.template}`;
    const text = this.templates.render(profile.template, ctx);
    checkKickstartStructure(text, file);
    return text;
  }

  /** pxelinux never needs a profile: a node whose appliance has none renders with globals and its own attributes. */
  pxelinux(env: RenderEnv, node: NodeRecord | null, mode: PxeMode, session?: string): string {
    if (!PXE_MODES.includes(mode)) throw new InvalidInputError(`unknown pxelinux mode ${JSON.stringify(mode)} (want ${PXE_MODES.join('|')})`);
    if (!node && (mode === 'install' || mode === 'os' || mode === 'capture')) {
      throw new InvalidInputError(`pxelinux mode ${mode} needs a node (unknown nodes get default or discover)`);
    }
    const profile = node ? (this.profiles.get(node.appliance) ?? null) : null;
    return this.templates.render(`pxelinux/${mode}.hbs`, buildContext(env, node, profile, { resolveImage: false, session }));
  }

  /** The iPXE script for a mode: the same context as pxelinux, `templates/ipxe/<mode>.hbs`. */
  ipxe(env: RenderEnv, node: NodeRecord | null, mode: PxeMode, session?: string): string {
    if (!IPXE_MODES.includes(mode)) throw new InvalidInputError(`unknown iPXE mode ${JSON.stringify(mode)} (want ${IPXE_MODES.join('|')})`);
    if (!node && mode !== 'discover') throw new InvalidInputError(`iPXE mode ${mode} needs a node (unknown nodes get discover)`);
    const profile = node ? (this.profiles.get(node.appliance) ?? null) : null;
    return this.templates.render(`ipxe/${mode}.hbs`, buildContext(env, node, profile, { resolveImage: false, session }));
  }

  dhcp(env: RenderEnv, format: DhcpFormat, nodes: NodeRecord[]): string {
    if (!DHCP_FORMATS.includes(format)) throw new InvalidInputError(`unknown DHCP format ${JSON.stringify(format)} (want ${DHCP_FORMATS.join('|')})`);
    return this.templates.render(`dhcp/${format}.hbs`, buildDhcpContext(env, nodes));
  }

  attributes(env: RenderEnv, node: NodeRecord): Record<string, string> {
    return mergeAttributes(env, this.profiles.get(node.appliance) ?? null, node);
  }

  imageFor(env: RenderEnv, node: NodeRecord): { name: string; method: string } | undefined {
    const img = imageFromAttributes(this.attributes(env, node), `node ${node.name}`);
    return img ? { name: img.name, method: img.method } : undefined;
  }

  /** The `secrets` of the node's profile chain (none when its appliance has no profile). */
  secrets(node: NodeRecord): SecretFile[] {
    return (this.profiles.get(node.appliance)?.secrets ?? []).map((f) => ({ ...f }));
  }
}

/** A synthetic node of `appliance`, used to exercise every template at load time. */
export function sampleNode(appliance: string): NodeRecord {
  const at = '2000-01-01T00:00:00.000Z';
  return {
    name: 'sample-0-0' as NodeName,
    mac: '52:54:00:00:00:01' as Mac,
    ip: '10.1.255.254' as Ipv4,
    uuid: null,
    appliance,
    rack: 0,
    rank: 0,
    attrs: {},
    bootAction: 'install',
    install: null,
    createdAt: at,
    updatedAt: at,
  };
}

/** `env` with every image known (the store's content is not a template problem) and a usable DHCP subnet. */
function sampleEnv(env: RenderEnv): RenderEnv {
  let dhcp = env.dhcp;
  try {
    dhcpSubnet(env);
  } catch {
    dhcp = { ...env.dhcp, subnet: '10.1.0.0', netmask: '255.255.0.0' };
  }
  return { ...env, dhcp, image: (name) => ({ name, sha256: '0'.repeat(64), rawSize: 1 << 30 }) };
}

/** Turns a render failure into a problem; errors without a file are charged to `file`. */
export function problemFrom(e: unknown, file: string): TemplateProblem {
  if (e instanceof TemplateError) return problemOf(e);
  if (e instanceof KickswarmError) return { file, message: e.message };
  return problemOf(toTemplateError(file, e));
}

export interface LoadResult {
  /** Null when there are problems: such a set must never serve. */
  set: RenderSet | null;
  problems: TemplateProblem[];
  profiles: string[];
  templates: string[];
}

/** Loads `<root>/profiles` and `<root>/templates` fresh from disk and validates them against `env`. */
export function loadRenderSet(root: string, env: RenderEnv): LoadResult {
  const { profiles, problems } = loadProfiles(path.join(root, 'profiles'));
  const t = loadTemplates(path.join(root, 'templates'));
  problems.push(...t.problems);
  const brokenTemplates = new Set(t.problems.map((p) => p.file));
  const result = (set: RenderSet | null): LoadResult => ({
    set,
    problems,
    profiles: [...profiles.keys()],
    templates: t.set.names(),
  });

  for (const req of REQUIRED_TEMPLATES) {
    if (!t.set.has(req) && !brokenTemplates.has(`templates/${req}`)) problems.push({ file: `templates/${req}`, message: 'required template is missing' });
  }
  for (const p of profiles.values()) {
    if (!t.set.has(p.template) && !brokenTemplates.has(`templates/${p.template}`)) {
      problems.push({ file: p.file, message: `template ${p.template} does not exist (no templates/${p.template})` });
    }
    for (const [kind, refs] of [
      ['pre', p.pre],
      ['post', p.post],
    ] as const) {
      for (const r of refs) {
        if (!t.set.snippets().includes(r.name) && !brokenTemplates.has(`templates/snippets/${r.name}.hbs`)) {
          problems.push({ file: p.file, message: `${kind} snippet ${JSON.stringify(r.name)} does not exist (no templates/snippets/${r.name}.hbs)` });
        }
      }
    }
  }
  if (problems.length > 0) return result(null);

  const set = new RenderSet(profiles, t.set);
  const senv = sampleEnv(env);
  const seen = new Set<string>();
  const attempt = (file: string, fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      const pr = problemFrom(e, file);
      const key = `${pr.file}:${pr.line ?? ''}:${pr.message}`;
      if (!seen.has(key)) {
        problems.push(pr);
        seen.add(key);
      }
    }
  };
  const samples = [...profiles.keys()].map(sampleNode);
  for (const node of samples) {
    const p = profiles.get(node.appliance)!;
    attempt(p.file, () => set.kickstart(senv, node));
    for (const mode of ['install', 'os', 'capture'] as const) {
      attempt(`templates/pxelinux/${mode}.hbs`, () => set.pxelinux(senv, node, mode));
      attempt(`templates/pxelinux/${mode}.hbs`, () => set.pxelinux(senv, node, mode, SAMPLE_SESSION));
      attempt(`templates/ipxe/${mode}.hbs`, () => set.ipxe(senv, node, mode));
      attempt(`templates/ipxe/${mode}.hbs`, () => set.ipxe(senv, node, mode, SAMPLE_SESSION));
    }
  }
  for (const mode of ['default', 'discover'] as const) attempt(`templates/pxelinux/${mode}.hbs`, () => set.pxelinux(senv, null, mode));
  attempt('templates/ipxe/discover.hbs', () => set.ipxe(senv, null, 'discover'));
  for (const f of DHCP_FORMATS) attempt(`templates/dhcp/${f}.hbs`, () => set.dhcp(senv, f, samples.slice(0, 1)));
  return result(problems.length > 0 ? null : set);
}
