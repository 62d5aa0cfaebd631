/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and says where the time
 * went: per category (the innermost frame of each sample that belongs to a
 * known part: SQLite, templates, logging, Koa, Node's HTTP/TCP, ...) and the
 * functions with the most self time.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Milliseconds covered by samples. */
  totalMs: number;
  /** Milliseconds per category, largest first, idle included. */
  categories: { category: string; ms: number; percentOfBusy: number }[];
  /** Functions with the most self time (busy time only). */
  topSelf: { fn: string; where: string; ms: number; percentOfBusy: number }[];
}

/** Categories by URL (or pseudo-frame name), tried in order on each frame from the leaf up. */
const CATEGORIES: [string, (f: CallFrame) => boolean][] = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['gc', (f) => f.functionName === '(garbage collector)'],
  ['v8/native (program)', (f) => f.functionName === '(program)'],
  ['sqlite (server/inventory, better-sqlite3)', (f) => /\/server\/inventory\/|better-sqlite3/.test(f.url)],
  ['render (server/render, handlebars)', (f) => /\/server\/render\/|handlebars/.test(f.url)],
  ['logging (pino)', (f) => /\/pino\/|pino-std|sonic-boom|\/server\/log\.ts/.test(f.url)],
  ['boot decision (server/core)', (f) => /\/server\/core\//.test(f.url)],
  ['kickstart route', (f) => /\/server\/http\/routes\/kickstart\.ts/.test(f.url)],
  ['other kickswarm http (app, errors, requester, limiter)', (f) => /\/server\/http\//.test(f.url)],
  ['tftp (server/tftp, npm tftp)', (f) => /\/server\/tftp\/|node_modules\/tftp\//.test(f.url)],
  ['pxe (server/pxe)', (f) => /\/server\/pxe\//.test(f.url)],
  [
    'koa + router',
    (f) =>
      /node_modules\/(koa|@koa|koa-compose|on-finished|statuses|type-is|content-type|mime-types|cookies|accepts|http-errors|encodeurl|fresh|vary|delegates|content-disposition|only|destroy|depd|ee-first|escape-html|parseurl|path-to-regexp)/.test(
        f.url,
      ),
  ],
  ['node http/net/dgram/streams (node:internal)', (f) => /^node:/.test(f.url)],
  ['tsx loader', (f) => /node_modules\/tsx\//.test(f.url)],
];

function categoryOf(stack: CallFrame[]): string {
  for (const f of stack) {
    for (const [name, test] of CATEGORIES) if (test(f)) return name;
  }
  return 'other';
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const repo = url.search(/\/(server|protocol|node-installer|bench)\//);
  if (repo >= 0) return url.slice(repo + 1);
  return url.replace(/^file:\/\//, '');
}

/**
 * Summarises one profile; `top` functions by self time are listed. With
 * `windowUs` only samples taken in [start, end] count: microseconds of the
 * system monotonic clock, the clock of both V8's profile timestamps and
 * `process.hrtime` on Linux, so another process can name the window.
 */
export function summariseCpuProfile(file: string, top = 25, windowUs?: { start: number; end: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const stackCache = new Map<number, CallFrame[]>();
  const stackOf = (id: number): CallFrame[] => {
    let s = stackCache.get(id);
    if (s) return s;
    s = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) s.push(byId.get(cur)!.callFrame);
    stackCache.set(id, s);
    return s;
  };

  const perCategory = new Map<string, number>();
  const perFn = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    const us = p.timeDeltas[i + 1] ?? 0;
    if (us <= 0) continue;
    if (windowUs && (at < windowUs.start || at > windowUs.end)) continue;
    total += us;
    const id = p.samples[i]!;
    const stack = stackOf(id);
    const cat = categoryOf(stack);
    perCategory.set(cat, (perCategory.get(cat) ?? 0) + us);
    if (cat === 'idle') continue;
    const leaf = stack[0]!;
    const where = leaf.url ? place(leaf) : `(native, called from ${describeCaller(stack)})`;
    const key = `${leaf.functionName}@${where}`;
    const e = perFn.get(key) ?? { fn: leaf.functionName || '(anonymous)', where, us: 0 };
    e.us += us;
    perFn.set(key, e);
  }
  const busy = total - (perCategory.get('idle') ?? 0);
  const pct = (us: number) => Math.round((1000 * us) / Math.max(1, busy)) / 10;
  return {
    totalMs: Math.round(total / 1000),
    categories: [...perCategory.entries()].sort((a, b) => b[1] - a[1]).map(([category, us]) => ({ category, ms: Math.round(us / 1000), percentOfBusy: category === 'idle' ? 0 : pct(us) })),
    topSelf: [...perFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, ms: Math.round(e.us / 1000), percentOfBusy: pct(e.us) })),
  };
}

function describeCaller(stack: CallFrame[]): string {
  const f = stack.find((s) => s.url);
  return f ? `${f.functionName || '(anonymous)'} ${place(f)}` : 'unknown';
}

/**
 * File and line of a frame. TypeScript run through tsx is profiled as its
 * transpiled text, whose line numbers do not match the source: those get the
 * file only (the function name says where).
 */
function place(f: CallFrame): string {
  const file = shortUrl(f.url);
  return file.endsWith('.ts') ? file : `${file}:${f.lineNumber + 1}`;
}

/** The summary as text lines. */
export function formatProfileSummary(s: ProfileSummary): string[] {
  const lines = [`profile: ${s.totalMs} ms sampled`, 'time by category (innermost matching frame), % of busy time:'];
  for (const c of s.categories) lines.push(`  ${String(c.ms).padStart(7)} ms  ${c.category === 'idle' ? '   -  ' : `${c.percentOfBusy.toFixed(1).padStart(5)}%`}  ${c.category}`);
  lines.push('top functions by self time:');
  for (const f of s.topSelf) lines.push(`  ${String(f.ms).padStart(7)} ms  ${f.percentOfBusy.toFixed(1).padStart(5)}%  ${f.fn}  ${f.where}`);
  return lines;
}

/** The newest `.cpuprofile` file in `dir`, if any. */
export function newestProfileIn(dir: string): string | undefined {
  let best: { file: string; mtime: number } | undefined;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.cpuprofile')) continue;
    const mtime = statSync(join(dir, f)).mtimeMs;
    if (!best || mtime > best.mtime) best = { file: join(dir, f), mtime };
  }
  return best?.file;
}
