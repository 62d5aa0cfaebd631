/**
 * The installer side of the kickstart: a parser for the anaconda-style profile
 * kickstart.cgi serves. It understands commands (recorded; unknown ones are
 * listed so the installer can log and ignore them, as anaconda does),
 * `%packages`, `%pre`, `%post` (`--nochroot`, `--interpreter`, `--erroronfail`,
 * `--log`) and kickswarm's own `%addon org_kickswarm` section with its `image`
 * directive. Malformed input is an InvalidInputError naming the line.
 */
import { InvalidInputError } from './errors.js';
import { splitWords as splitShellWords, UnclosedQuoteError } from './words.js';
import { isImageRef } from './node.js';

export const IMAGE_METHODS = ['torrent', 'multicast', 'http'] as const;
export type ImageMethod = (typeof IMAGE_METHODS)[number];

export const KICKSWARM_ADDON = 'org_kickswarm';

/** Commands kickswarm's installer knows about (others are reported as unknown). */
export const KNOWN_COMMANDS = new Set([
  'auth',
  'authselect',
  'autopart',
  'bootloader',
  'clearpart',
  'cmdline',
  'eula',
  'firewall',
  'firstboot',
  'graphical',
  'halt',
  'ignoredisk',
  'install',
  'keyboard',
  'lang',
  'logging',
  'network',
  'part',
  'poweroff',
  'reboot',
  'reqpart',
  'rootpw',
  'selinux',
  'services',
  'shutdown',
  'skipx',
  'text',
  'timezone',
  'url',
  'user',
  'zerombr',
]);

export interface KickstartCommand {
  name: string;
  args: string[];
  line: number;
}

export interface KickstartScript {
  kind: 'pre' | 'post';
  body: string;
  interpreter: string;
  nochroot: boolean;
  erroronfail: boolean;
  log?: string;
  /** Line of the `%pre`/`%post` header. */
  line: number;
}

export interface ImageDirective {
  /** `NAME` or `NAME@VERSION` (the frontend's kickstarts name the exact version). */
  name: string;
  method: ImageMethod;
  /** Block device or file the image is written to. */
  target: string;
  /** SHA-256 of the raw image (hex), when the frontend knows it. */
  sha256?: string;
  /** Raw size in bytes. */
  size?: number;
  /** `--verify`: read the target back after writing and hash it (every chunk is verified before it is written either way). */
  verify?: boolean;
  line: number;
}

export interface Kickstart {
  commands: KickstartCommand[];
  unknownCommands: KickstartCommand[];
  packages: string[];
  pre: KickstartScript[];
  post: KickstartScript[];
  image?: ImageDirective;
  /** Other `%addon` sections, by name, as raw lines. */
  addons: Record<string, string[]>;
}

/** Longest kickstart accepted (hostile-input bound). */
export const MAX_KICKSTART_BYTES = 4 * 1024 * 1024;

function fail(line: number, message: string): never {
  throw new InvalidInputError(`kickstart line ${line}: ${message}`, { line });
}

/** Splits a command line into words with shell-like quotes and escapes (see protocol/words.ts). */
export function splitWords(text: string, line: number): string[] {
  try {
    return splitShellWords(text);
  } catch (e) {
    if (e instanceof UnclosedQuoteError) fail(line, 'unterminated quote');
    throw e;
  }
}

/** `--key=value` / `--key value` / `--flag` options of a section header or directive. */
function parseOptions(words: string[], line: number, spec: Record<string, 'flag' | 'value'>): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(w);
    if (!m) fail(line, `unexpected argument ${JSON.stringify(w.slice(0, 60))}`);
    const [, key, inline] = m as unknown as [string, string, string | undefined];
    const kind = spec[key];
    if (!kind) fail(line, `unknown option --${key.slice(0, 40)}`);
    if (kind === 'flag') {
      if (inline !== undefined) fail(line, `--${key} takes no value`);
      out[key] = true;
    } else {
      const v = inline ?? words[++i];
      if (v === undefined || v === '') fail(line, `--${key} needs a value`);
      out[key] = v;
    }
  }
  return out;
}

const SCRIPT_OPTIONS = { nochroot: 'flag', erroronfail: 'flag', interpreter: 'value', log: 'value' } as const;
const IMAGE_OPTIONS = { name: 'value', method: 'value', target: 'value', sha256: 'value', size: 'value', verify: 'flag' } as const;

function parseImage(words: string[], line: number): ImageDirective {
  const o = parseOptions(words, line, IMAGE_OPTIONS);
  const name = o.name as string | undefined;
  if (!name || !isImageRef(name)) fail(line, 'image needs a valid --name (NAME or NAME@VERSION)');
  const method = (o.method as string | undefined) ?? 'torrent';
  if (!(IMAGE_METHODS as readonly string[]).includes(method)) fail(line, `image --method must be ${IMAGE_METHODS.join('|')}`);
  const target = o.target as string | undefined;
  if (!target || !target.startsWith('/') || target.includes('\0')) fail(line, 'image needs an absolute --target path');
  const sha = o.sha256 as string | undefined;
  if (sha !== undefined && !/^[0-9a-f]{64}$/i.test(sha)) fail(line, 'image --sha256 must be 64 hex digits');
  const size = o.size as string | undefined;
  if (size !== undefined && !/^\d{1,16}$/.test(size)) fail(line, 'image --size must be a byte count');
  return { name, method: method as ImageMethod, target, sha256: sha?.toLowerCase(), size: size === undefined ? undefined : Number(size), ...(o.verify ? { verify: true } : {}), line };
}

/** Parses a whole kickstart. */
export function parseKickstart(text: string): Kickstart {
  if (Buffer.byteLength(text) > MAX_KICKSTART_BYTES) throw new InvalidInputError(`kickstart larger than ${MAX_KICKSTART_BYTES} bytes`);
  if (text.includes('\0')) throw new InvalidInputError('kickstart contains a NUL byte');
  const ks: Kickstart = { commands: [], unknownCommands: [], packages: [], pre: [], post: [], addons: {} };
  const lines = text.split(/\r?\n/);
  let i = 0;
  while (i < lines.length) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const trimmed = raw.trim();
    i++;
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (!trimmed.startsWith('%')) {
      const words = splitWords(trimmed, lineNo);
      const cmd = { name: words[0]!, args: words.slice(1), line: lineNo };
      if (!/^[a-z][a-z0-9_-]*$/.test(cmd.name)) fail(lineNo, `malformed command ${JSON.stringify(cmd.name.slice(0, 40))}`);
      (KNOWN_COMMANDS.has(cmd.name) ? ks.commands : ks.unknownCommands).push(cmd);
      continue;
    }
    const header = splitWords(trimmed, lineNo);
    const section = header[0]!;
    if (section === '%end') fail(lineNo, '%end without an open section');
    const body: string[] = [];
    let closed = false;
    while (i < lines.length) {
      const l = lines[i]!;
      i++;
      if (l.trim() === '%end') {
        closed = true;
        break;
      }
      if (section !== '%pre' && section !== '%post' && /^%[a-z]/.test(l.trim())) {
        fail(i, `${l.trim().split(/\s/)[0]} inside ${section} (missing %end for line ${lineNo}?)`);
      }
      body.push(l);
    }
    if (!closed) fail(lineNo, `${section.slice(0, 40)} has no %end`);
    switch (section) {
      case '%packages':
        for (const p of body) {
          const t = p.trim();
          if (t && !t.startsWith('#')) ks.packages.push(t);
        }
        break;
      case '%pre':
      case '%post': {
        const o = parseOptions(header.slice(1), lineNo, SCRIPT_OPTIONS);
        if (section === '%pre' && o.nochroot) fail(lineNo, '%pre takes no --nochroot (it always runs outside the target)');
        ks[section === '%pre' ? 'pre' : 'post'].push({
          kind: section === '%pre' ? 'pre' : 'post',
          body: body.join('\n') + (body.length ? '\n' : ''),
          interpreter: (o.interpreter as string | undefined) ?? '/bin/sh',
          nochroot: Boolean(o.nochroot),
          erroronfail: Boolean(o.erroronfail),
          log: o.log as string | undefined,
          line: lineNo,
        });
        break;
      }
      case '%addon': {
        const name = header[1];
        if (!name || !/^[A-Za-z0-9_.-]+$/.test(name)) fail(lineNo, '%addon needs a name');
        if (name === KICKSWARM_ADDON) {
          body.forEach((l, k) => {
            const t = l.trim();
            if (!t || t.startsWith('#')) return;
            const words = splitWords(t, lineNo + 1 + k);
            if (words[0] !== 'image') fail(lineNo + 1 + k, `unknown ${KICKSWARM_ADDON} directive ${JSON.stringify(words[0]!.slice(0, 40))}`);
            if (ks.image) fail(lineNo + 1 + k, 'only one image directive is allowed');
            ks.image = parseImage(words.slice(1), lineNo + 1 + k);
          });
        } else {
          ks.addons[name] = body;
        }
        break;
      }
      case '%onerror':
      case '%traceback':
      case '%anaconda':
        break;
      default:
        fail(lineNo, `unknown section ${JSON.stringify(section.slice(0, 40))}`);
    }
  }
  return ks;
}
