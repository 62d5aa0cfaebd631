/**
 * The dashboard's static files: its own (server/ui/static) and uPlot's from
 * node_modules, read once at start. Each is served at
 * `/ui/static/NAME?v=HASH` with a strong ETag and a year-long immutable
 * cache lifetime (pages always link the current hash); `If-None-Match` gets 304.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PACKAGE_ROOT } from '../datadir.js';

export interface Asset {
  name: string;
  type: string;
  body: Buffer;
  etag: string;
  /** First 12 hex digits of the SHA-256, used as `?v=`. */
  version: string;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function asset(name: string, file: string): Asset {
  const body = fs.readFileSync(file);
  const hash = crypto.createHash('sha256').update(body).digest('hex');
  return { name, type: TYPES[path.extname(name)] ?? 'application/octet-stream', body, etag: `"${hash.slice(0, 32)}"`, version: hash.slice(0, 12) };
}

/** Loads every asset; throws when a file is missing (a broken install, found at start). */
export function loadAssets(): Map<string, Asset> {
  const dir = path.join(PACKAGE_ROOT, 'server/ui/static');
  const out = new Map<string, Asset>();
  for (const f of fs.readdirSync(dir)) if (/\.(js|css)$/.test(f)) out.set(f, asset(f, path.join(dir, f)));
  const req = createRequire(path.join(PACKAGE_ROOT, 'package.json'));
  const uplotDir = path.dirname(req.resolve('uplot/dist/uPlot.iife.min.js'));
  out.set('uPlot.iife.min.js', asset('uPlot.iife.min.js', path.join(uplotDir, 'uPlot.iife.min.js')));
  out.set('uPlot.min.css', asset('uPlot.min.css', path.join(uplotDir, 'uPlot.min.css')));
  return out;
}
