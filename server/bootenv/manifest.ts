/**
 * The boot environment's manifest, `manifest.json` next to the initrd: every
 * package (name, version, SHA-256 of the .deb), every file written to the TFTP
 * root (path, size, SHA-256), the kernel, Node.js and module counts. It holds
 * no time stamp, so the same inputs give the same manifest too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError } from '../../protocol/errors.js';
import type { DebInfo } from './debs.js';

export const MANIFEST_NAME = 'manifest.json';

export interface BootenvManifest {
  format: 1;
  kickswarmVersion: string;
  kernel: { version: string; source: string };
  node: { version: string; binary: string; sha256: string };
  installer: { bundle: string; size: number; sha256: string };
  compression: string;
  modules: { count: number; extra: string[]; missing: string[] };
  packages: Omit<DebInfo, 'file'>[];
  /** Files in the TFTP root, paths relative to it. */
  files: { path: string; size: number; sha256: string }[];
}

export function manifestPath(tftpRoot: string, initrd: string): string {
  return path.join(tftpRoot, path.dirname(initrd), MANIFEST_NAME);
}

export function readManifest(file: string): BootenvManifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new NotFoundError(`no boot environment manifest at ${file} (build one: kickswarm bootenv build)`);
  }
  return JSON.parse(text) as BootenvManifest;
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** The manifest as lines a person reads. */
export function formatManifest(m: BootenvManifest, root: string): string {
  const lines = [
    `boot environment in ${root}`,
    `  kernel ${m.kernel.version} (${m.kernel.source}), ${m.modules.count} modules${m.modules.extra.length ? ` (extra: ${m.modules.extra.join(', ')})` : ''}`,
    `  Node.js ${m.node.version} (${m.node.binary}), kickswarm-install ${m.kickswarmVersion} bundle ${mib(m.installer.size)}`,
    `  initrd compression ${m.compression}`,
    'files:',
    ...m.files.map((f) => `  ${f.path.padEnd(28)} ${mib(f.size).padStart(10)}  sha256 ${f.sha256.slice(0, 16)}…`),
    'packages:',
    ...m.packages.map((p) => `  ${p.package.padEnd(28)} ${p.version.padEnd(36)} sha256 ${p.sha256.slice(0, 16)}…`),
  ];
  return lines.join('\n');
}
