/**
 * `kickswarm-install` as one self-contained ES module file (esbuild), so the
 * initrd needs no node_modules. The optional native add-ons of the swarm stack
 * (uTP, WebSocket accelerators, WebRTC) stay out: each is loaded inside a
 * try/catch by its user and the installer runs without it (TCP peers only).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnavailableError } from '../../protocol/errors.js';
import { PACKAGE_ROOT } from '../datadir.js';

/** Native optional dependencies that are never bundled. */
export const BUNDLE_EXTERNALS = ['utp-native', 'bufferutil', 'utf-8-validate', 'node-datachannel'];

/** The installer's entry point: the TypeScript source (what dist/ is built from), else the built one. */
export function installerEntry(root = PACKAGE_ROOT): string {
  const built = path.join(root, 'dist', 'node-installer', 'main.js');
  const src = path.join(root, 'node-installer', 'main.ts');
  if (fs.existsSync(src)) return src;
  if (fs.existsSync(built)) return built;
  throw new UnavailableError(`neither ${built} nor ${src} exists: run npm run build`);
}

/** Bundles the installer into `outFile`; resolves with its size in bytes. */
export async function bundleInstaller(outFile: string, entry = installerEntry()): Promise<number> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new UnavailableError('the esbuild package is missing: run npm ci in the kickswarm folder');
  }
  await esbuild.build({
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: BUNDLE_EXTERNALS,
    // CommonJS dependencies call require(); an ES module has none of its own.
    banner: { js: "import { createRequire as __kickswarmRequire } from 'node:module'; const require = __kickswarmRequire(import.meta.url);" },
    legalComments: 'none',
    // Every node parses the whole file at start-up: without whitespace and with
    // shorter syntax (names kept, so stack traces still name functions) it is a
    // third smaller and loads in about 0.28 CPU-s instead of 0.37.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'silent',
    plugins: [
      {
        // webtorrent loads utp-native inside a try/catch and prints a stack when it is absent;
        // in the bundle uTP is simply off (TCP peers only), quietly.
        name: 'kickswarm-no-utp',
        setup(b) {
          b.onLoad({ filter: /[\\/]webtorrent[\\/]lib[\\/]utp\.cjs$/ }, () => ({ contents: 'module.exports = {}', loader: 'js' }));
        },
      },
    ],
  });
  return fs.statSync(outFile).size;
}
