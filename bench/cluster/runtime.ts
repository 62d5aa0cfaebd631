/**
 * Which JavaScript the benchmark runs as `kickswarm` and `kickswarm-install`.
 *
 * - `dist`: the built package (dist/), as installed users run it.
 * - `build`: the current sources compiled by tsc into .bench/cluster-build/
 *   (reused while no source is newer), so a stale dist/ is never measured.
 * - `source`: TypeScript through tsx; every process start then costs about
 *   0.4 CPU seconds more, which shows up as start skew with many nodes on
 *   few cores.
 * - `auto`: `dist` when it is at least as new as every source file, else `build`
 *   (else `source` when tsc fails).
 *
 * The installer then runs as that module tree, or (`--installer bundle`, the
 * default) as one esbuild file made from the current sources, which is how
 * the boot environment runs it (server/bootenv/bundle.ts): loading the
 * module tree costs each installer about 0.4 CPU-s more.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { bundleInstaller, installerEntry } from '../../server/bootenv/bundle.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';

export const RUNTIMES = ['auto', 'dist', 'build', 'source'] as const;
export type RuntimeChoice = (typeof RUNTIMES)[number];
export const INSTALLER_FORMS = ['bundle', 'modules'] as const;
export type InstallerForm = (typeof INSTALLER_FORMS)[number];

export interface Runtime {
  kind: Exclude<RuntimeChoice, 'auto'>;
  /** argv prefix (node and its flags, script) of `kickswarm`. */
  server: string[];
  /** argv prefix of `kickswarm-install`. */
  installer: string[];
  /** One line on how the choice was made. */
  note: string;
}

const SOURCE_DIRS = ['protocol', 'server', 'node-installer'];
const BUILD_DIR = path.join(PACKAGE_ROOT, '.bench', 'cluster-build');

function newestSourceMtime(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) walk(path.join(PACKAGE_ROOT, d));
  return newest;
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function compiled(root: string, kind: 'dist' | 'build', note: string): Runtime {
  return {
    kind,
    server: [process.execPath, path.join(root, 'server/main.js')],
    installer: [process.execPath, path.join(root, 'node-installer/main.js')],
    note,
  };
}

function source(note: string): Runtime {
  return {
    kind: 'source',
    server: [process.execPath, '--import', 'tsx', path.join(PACKAGE_ROOT, 'server/main.ts')],
    installer: [process.execPath, '--import', 'tsx', path.join(PACKAGE_ROOT, 'node-installer/main.ts')],
    note,
  };
}

/** Compiles the sources into .bench/cluster-build unless that is already current. */
function build(newest: number): Runtime {
  const stamp = path.join(BUILD_DIR, '.built');
  if (mtime(stamp) >= newest) return compiled(BUILD_DIR, 'build', `compiled sources in ${path.relative(PACKAGE_ROOT, BUILD_DIR)} (current)`);
  const tsc = path.join(PACKAGE_ROOT, 'node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(PACKAGE_ROOT, 'tsconfig.build.json'), '--outDir', BUILD_DIR], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '').split('\n')[0];
    if (!fs.existsSync(path.join(BUILD_DIR, 'server/main.js'))) return source(`tsc failed (${out}); running the sources through tsx`);
  }
  fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return compiled(BUILD_DIR, 'build', `compiled the sources into ${path.relative(PACKAGE_ROOT, BUILD_DIR)}`);
}

export function resolveRuntime(choice: RuntimeChoice): Runtime {
  if (choice === 'source') return source('TypeScript sources through tsx (--runtime source)');
  const dist = path.join(PACKAGE_ROOT, 'dist');
  const newest = newestSourceMtime();
  if (choice === 'dist') {
    if (!fs.existsSync(path.join(dist, 'server/main.js'))) throw new Error('--runtime dist: dist/ is missing (npm run build)');
    return compiled(dist, 'dist', mtime(path.join(dist, 'server/main.js')) >= newest ? 'dist/ (current)' : 'dist/ (OLDER than the sources: --runtime dist asked for it)');
  }
  if (choice === 'build') return build(newest);
  if (mtime(path.join(dist, 'server/main.js')) >= newest && mtime(path.join(dist, 'node-installer/main.js')) >= newest) return compiled(dist, 'dist', 'dist/ (current)');
  return build(newest);
}

/** `runtime` with the installer as one bundled file (made from the current sources unless the bundle is newer than all of them). */
export async function withInstallerBundle(runtime: Runtime): Promise<Runtime> {
  const bundle = path.join(PACKAGE_ROOT, '.bench', 'kickswarm-install.mjs');
  if (mtime(bundle) < newestSourceMtime()) {
    fs.mkdirSync(path.dirname(bundle), { recursive: true });
    await bundleInstaller(bundle, installerEntry());
  }
  const [node] = runtime.installer;
  return { ...runtime, installer: [node!, bundle], note: `${runtime.note}; installer bundled into ${path.relative(PACKAGE_ROOT, bundle)} (as in the boot environment)` };
}

/** `runtime` with every installer run with the extra Node.js flags `flags` (words split on spaces); unchanged when undefined. */
export function withInstallerFlags(runtime: Runtime, flags: string | undefined): Runtime {
  if (flags === undefined) return runtime;
  const [node, ...rest] = runtime.installer;
  return { ...runtime, installer: [node!, ...flags.split(/\s+/).filter(Boolean), ...rest] };
}
