/**
 * The dashboard's page templates: Handlebars with HTML escaping on (unlike the
 * kickstart templates), compiled once at start from server/ui/views.
 */
import fs from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { PACKAGE_ROOT } from '../datadir.js';
import type { Asset } from './assets.js';

export type Page = (ctx: Record<string, unknown>) => string;

function humanBytes(n: unknown): string {
  const v = typeof n === 'number' ? n : Number(n);
  if (!Number.isFinite(v)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`;
}

export function loadViews(assets: Map<string, Asset>): Map<string, Page> {
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('bytes', humanBytes);
  hb.registerHelper('join', (a: unknown, sep: unknown) => (Array.isArray(a) ? a.join(typeof sep === 'string' ? sep : ', ') : ''));
  hb.registerHelper('asset', (name: unknown) => {
    const a = assets.get(String(name));
    if (!a) throw new Error(`unknown dashboard asset ${String(name)}`);
    return `/ui/static/${a.name}?v=${a.version}`;
  });
  const dir = path.join(PACKAGE_ROOT, 'server/ui/views');
  const pages = new Map<string, Page>();
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.hbs')) continue;
    const name = f.slice(0, -4);
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    if (name === 'header' || name === 'footer') hb.registerPartial(name, src);
    else pages.set(name, hb.compile(src, { strict: false }));
  }
  return pages;
}
