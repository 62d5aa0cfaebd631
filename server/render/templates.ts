/**
 * Templates: every `*.hbs` under `templates/`, compiled by a private Handlebars
 * instance with `strict: true` and `noEscape: true`, so a missing variable is an
 * error instead of an empty string. `templates/snippets/<name>.hbs` are partials
 * (`{{> name}}` or `{{snippet name}}`). Every compile or render failure becomes a
 * TemplateError naming the file (relative to the data dir) and line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type Handlebars from 'handlebars';
import { TemplateError } from '../../protocol/errors.js';
import type { TemplateProblem } from './types.js';

/** Handlebars, loaded on the first compile: commands that render nothing do not pay for it. */
const loadHandlebars = (): typeof Handlebars => createRequire(import.meta.url)('handlebars') as typeof Handlebars;

const COMPILE_OPTIONS = { strict: true, noEscape: true } as const;

type Compiled = (ctx: unknown, opts?: Record<string, unknown>) => string;

/** A compiled set of templates, keyed by path relative to `templates/` (e.g. `pxelinux/os.hbs`). */
export interface TemplateSet {
  names(): string[];
  has(name: string): boolean;
  snippets(): string[];
  /** Renders `name` with `ctx`; throws TemplateError naming `templates/<name>` (or the snippet that failed). */
  render(name: string, ctx: unknown): string;
}

/** Converts anything a compile or render threw into a TemplateError for `file`; TemplateErrors pass through. */
export function toTemplateError(file: string, e: unknown): TemplateError {
  if (e instanceof TemplateError) return e;
  const err = e as { message?: string; lineNumber?: number; column?: number };
  let message = String(err.message ?? e);
  let line = typeof err.lineNumber === 'number' ? err.lineNumber : undefined;
  const parse = /^Parse error on line (\d+):/.exec(message);
  if (parse) {
    line = Number(parse[1]);
    const lines = message.split('\n');
    message = `parse error: ${lines[lines.length - 1]!.replace(/^Expecting (.{0,120}).*?(, got .*)$/, 'expecting $1...$2')}`;
  }
  const strict = /^"([^"]+)" not defined in .* - (\d+):(\d+)$/s.exec(message);
  if (strict) {
    message = `"${strict[1]}" is not defined (column ${Number(strict[3]) + 1}; guard optional values with {{#if}})`;
    line = Number(strict[2]);
  } else {
    const loc = / - (\d+):(\d+)$/.exec(message);
    if (loc) {
      message = message.slice(0, loc.index);
      line ??= Number(loc[1]);
    }
  }
  return new TemplateError(file, line, message);
}

/** The TemplateProblem a TemplateError describes (its message without the `file:line: ` prefix). */
export function problemOf(e: TemplateError): TemplateProblem {
  const prefix = `${e.file}${e.line !== undefined ? `:${e.line}` : ''}: `;
  const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  return e.line !== undefined ? { file: e.file, line: e.line, message } : { file: e.file, message };
}

interface HelperOptions {
  data?: { root?: unknown };
  loc?: { start?: { line?: number } };
}

function helperError(options: HelperOptions | undefined, message: string): Error {
  const line = options?.loc?.start?.line;
  return Object.assign(new Error(message), line !== undefined ? { lineNumber: line } : {});
}

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.name.startsWith('.')) continue;
    if (ent.isDirectory()) out.push(...listFiles(dir, r));
    else if (ent.name.endsWith('.hbs')) out.push(r);
  }
  return out.sort();
}

/** Reads and compiles every template under `templatesDir`; a file that does not parse is a problem. */
export function loadTemplates(templatesDir: string): { set: TemplateSet; problems: TemplateProblem[] } {
  const hb = loadHandlebars().create();
  const problems: TemplateProblem[] = [];
  const compiled = new Map<string, Compiled>();
  const snippetNames: string[] = [];
  let files: string[] = [];
  try {
    files = listFiles(templatesDir);
  } catch (e) {
    problems.push({ file: 'templates', message: `cannot read the templates folder: ${(e as Error).message}` });
  }

  for (const rel of files) {
    const file = `templates/${rel}`;
    try {
      const src = fs.readFileSync(path.join(templatesDir, rel), 'utf8');
      hb.parse(src);
      const fn = hb.compile(src, COMPILE_OPTIONS) as Compiled;
      const guarded: Compiled = (ctx, opts) => {
        try {
          return fn(ctx, opts);
        } catch (e) {
          throw toTemplateError(file, e);
        }
      };
      compiled.set(rel, guarded);
      const m = /^snippets\/([^/]+)\.hbs$/.exec(rel);
      if (m) {
        snippetNames.push(m[1]!);
        hb.registerPartial(m[1]!, guarded as unknown as Handlebars.Template);
      }
    } catch (e) {
      problems.push(problemOf(toTemplateError(file, e)));
    }
  }

  hb.registerHelper('snippet', function (this: unknown, name: unknown, options: HelperOptions) {
    const fn = compiled.get(`snippets/${String(name)}.hbs`);
    if (!fn) throw helperError(options, `unknown snippet ${JSON.stringify(name)} (no templates/snippets/${String(name)}.hbs)`);
    return fn(options?.data?.root ?? this, { data: options?.data }).replace(/\n+$/, '');
  });
  hb.registerHelper('join', (list: unknown, sep: unknown, options?: HelperOptions) => {
    if (!Array.isArray(list)) throw helperError(options, 'join: first argument must be a list');
    return list.join(typeof sep === 'string' ? sep : ' ');
  });
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('default', (value: unknown, fallback: unknown) => (value === undefined || value === null || value === '' ? fallback : value));
  /** A double-quoted string for ISC dhcpd and similar configs. */
  hb.registerHelper('quote', (value: unknown) => `"${String(value).replace(/["\\]/g, '\\$&')}"`);

  const set: TemplateSet = {
    names: () => [...compiled.keys()],
    has: (name) => compiled.has(name),
    snippets: () => [...snippetNames],
    render(name, ctx) {
      const fn = compiled.get(name);
      if (!fn) throw new TemplateError(`templates/${name}`, undefined, 'template does not exist');
      return fn(ctx);
    },
  };
  return { set, problems };
}
