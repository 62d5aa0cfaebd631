/**
 * `kickswarm-install` as one self-contained ES module file (esbuild), so the
 * initrd needs no node_modules. The optional native add-ons of the swarm stack
 * (uTP, WebSocket accelerators, WebRTC) stay out: each is loaded inside a
 * try/catch by its user and the installer runs without it (TCP peers only).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plugin } from 'esbuild';
import { UnavailableError } from '../../protocol/errors.js';
import { PACKAGE_ROOT } from '../datadir.js';

/** Native optional dependencies that are never bundled. */
export const BUNDLE_EXTERNALS = ['utp-native', 'bufferutil', 'utf-8-validate', 'node-datachannel'];

/**
 * Dependencies of the swarm stack the installer never runs, replaced in the
 * bundle by what their users already expect in a browser build:
 * - the DHT and NAT traversal (UPnP, NAT-PMP): webtorrent and torrent-discovery
 *   use them only when `typeof` says they are there, and the installer's
 *   clients have them off (TCP_ONLY);
 * - node-fetch, through cross-fetch-ponyfill: its users (the tracker's HTTP
 *   announces) get the fetch of the undici the bundle holds anyway, which
 *   also takes the installer's undici Agent as `dispatcher`. Node.js's own
 *   fetch would load Node.js's internal copy of undici on first use (about
 *   45 ms of CPU on every node); its users import only `fetch` (a named
 *   import the stub lacks fails the build).
 * Every node loads the bundle once per install; these were a fifth of it.
 */
export const BUNDLE_STUBS: Readonly<Record<string, string>> = {
  'bittorrent-dht': 'export const Client = undefined; export const Server = undefined; export default undefined;',
  '@silentbot1/nat-api': 'export default undefined;',
  'cross-fetch-ponyfill': "export { fetch, fetch as default } from 'undici';",
};

/**
 * Source edits of bundled packages, by file (a path ending): the text to
 * replace and what replaces it. A file whose text no longer holds it is
 * bundled as it is (a newer release may have dropped it). undici's cookie
 * helpers read `globalThis.Headers` when they load, and that one read makes
 * Node.js load its internal undici (about 45 ms of CPU on every node); the
 * installer never calls them.
 */
export const BUNDLE_EDITS: readonly { file: RegExp; from: string; to: string }[] = [{ file: /[\\/]undici[\\/]lib[\\/]web[\\/]cookies[\\/]index\.js$/, from: 'globalThis.Headers', to: 'undefined' }];

/** The esbuild plugin that puts BUNDLE_STUBS in place of those packages and makes the BUNDLE_EDITS. */
export function stubsPlugin(): Plugin {
  const names = Object.keys(BUNDLE_STUBS).map((n) => n.replace(/[/.]/g, '\\$&'));
  return {
    name: 'kickswarm-stubs',
    setup(b) {
      b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (a) => ({ path: a.path, namespace: 'kickswarm-stub' }));
      // A stub's own imports (undici) resolve from kickswarm's node_modules.
      b.onLoad({ filter: /.*/, namespace: 'kickswarm-stub' }, (a) => ({ contents: BUNDLE_STUBS[a.path], loader: 'js', resolveDir: PACKAGE_ROOT }));
      for (const e of BUNDLE_EDITS) {
        b.onLoad({ filter: e.file }, async (a) => {
          const text = await fs.promises.readFile(a.path, 'utf8');
          return { contents: text.split(e.from).join(e.to), loader: 'js', resolveDir: path.dirname(a.path) };
        });
      }
    },
  };
}

/** The installer's entry point: the TypeScript source (what dist/ is built from), else the built one. */
export function installerEntry(root = PACKAGE_ROOT): string {
  const built = path.join(root, 'dist', 'node-installer', 'main.js');
  const src = path.join(root, 'node-installer', 'main.ts');
  if (fs.existsSync(src)) return src;
  if (fs.existsSync(built)) return built;
  throw new UnavailableError(`neither ${built} nor ${src} exists: run npm run build`);
}

/** A bundle written: its size, and the source files it holds (paths relative to the working folder, as esbuild names them). */
export interface InstallerBundle {
  bytes: number;
  inputs: string[];
}

/** Bundles the installer into `outFile`. */
export async function bundleInstaller(outFile: string, entry = installerEntry()): Promise<InstallerBundle> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new UnavailableError('the esbuild package is missing: run npm ci in the kickswarm folder');
  }
  const r = await esbuild.build({
    entryPoints: [entry],
    metafile: true,
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
      stubsPlugin(),
    ],
  });
  return { bytes: fs.statSync(outFile).size, inputs: Object.keys(r.metafile.inputs) };
}
