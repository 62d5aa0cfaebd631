/**
 * `kickswarm bootenv build [--out DIR] [--kernel FILE --modules DIR | --from-dir DEBS]
 * [--modules-extra M,...] [--cache-dir DIR] [--compress gzip|zstd]` and
 * `kickswarm bootenv show [--json]`: the installer boot environment in the
 * TFTP root (docs/boot-environment.md).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import { buildBootenv } from '../bootenv/build.js';
import type { Compression } from '../bootenv/cpio.js';
import { DebFetcher } from '../bootenv/debs.js';
import { formatManifest, manifestPath, readManifest } from '../bootenv/manifest.js';
import type { CliContext, CommandModule } from './context.js';

interface BuildFlags {
  out?: string;
  kernel?: string;
  modules?: string;
  fromDir?: string;
  modulesExtra?: string;
  cacheDir?: string;
  compress: string;
}

function tftpRoot(ctx: CliContext, out?: string): string {
  return path.resolve(out ?? ctx.config().tftpRoot ?? ctx.dataDir().tftpboot);
}

/** `a,b c` -> ['a','b','c'], each a plausible module name. */
export function parseModuleList(s: string | undefined): string[] {
  if (!s) return [];
  const names = s.split(/[,\s]+/).filter(Boolean);
  for (const n of names) if (!/^[A-Za-z0-9_-]{1,64}$/.test(n)) throw new InvalidInputError(`--modules-extra: ${JSON.stringify(n.slice(0, 70))} is not a module name`);
  return names;
}

async function build(o: BuildFlags, ctx: CliContext): Promise<void> {
  if (Boolean(o.kernel) !== Boolean(o.modules)) throw new InvalidInputError('--kernel FILE and --modules DIR go together');
  if (o.compress !== 'gzip' && o.compress !== 'zstd') throw new InvalidInputError(`--compress ${JSON.stringify(o.compress)} (want gzip|zstd)`);
  const cfg = ctx.config();
  const out = tftpRoot(ctx, o.out);
  const cacheDir = path.resolve(o.cacheDir ?? path.join(ctx.dataDir().root, 'cache', 'bootenv'));
  const debs = new DebFetcher(o.fromDir ? { kind: 'dir', dir: path.resolve(o.fromDir) } : { kind: 'apt', cacheDir: path.join(cacheDir, 'debs') }, path.join(cacheDir, 'unpacked'));
  const started = Date.now();
  const { manifest, manifestFile } = await buildBootenv({
    out,
    kernelPath: cfg.pxe.kernel,
    initrdPath: cfg.pxe.initrd,
    debs,
    kernel: o.kernel && o.modules ? { file: path.resolve(o.kernel), modules: o.modules } : undefined,
    modulesExtra: parseModuleList(o.modulesExtra),
    compression: o.compress as Compression,
    workDir: cacheDir,
    progress: (line) => ctx.out(`bootenv: ${line}`),
  });
  ctx.out(formatManifest(manifest, out));
  ctx.out(`manifest ${manifestFile} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function show(o: { json?: boolean; out?: string }, ctx: CliContext): void {
  const out = tftpRoot(ctx, o.out);
  const m = readManifest(manifestPath(out, ctx.config().pxe.initrd));
  ctx.out(o.json ? JSON.stringify(m, null, 2) : formatManifest(m, out));
}

export const bootenvCommand: CommandModule = (program: Command, ctx: CliContext) => {
  const cmd = program.command('bootenv').description('the installer boot environment (kernel, initrd, PXELINUX loaders) in the TFTP root');
  cmd
    .command('build')
    .description('build the installer kernel + initrd and copy the loaders into the TFTP root, from Debian packages')
    .option('--out <dir>', 'TFTP root to write into (default: config tftpRoot or <data-dir>/tftpboot)')
    .option('--kernel <file>', 'use this kernel instead of the Debian package (with --modules)')
    .option('--modules <dir>', "the kernel's module folder, /lib/modules/<version> (with --kernel)")
    .option('--from-dir <dir>', 'take every package from this folder of .deb files (offline frontend)')
    .option('--modules-extra <list>', 'more kernel modules to include, comma-separated')
    .option('--cache-dir <dir>', 'where downloaded and unpacked packages are kept (default <data-dir>/cache/bootenv)')
    .option('--compress <kind>', 'initrd compression: gzip|zstd', 'gzip')
    .action((o: BuildFlags) => build(o, ctx));
  cmd
    .command('show')
    .description("print the boot environment's manifest: packages, versions, files, SHA-256")
    .option('--out <dir>', 'TFTP root (default: config tftpRoot or <data-dir>/tftpboot)')
    .option('--json', 'print the manifest as JSON')
    .action((o: { json?: boolean; out?: string }) => show(o, ctx));
  for (const c of cmd.commands) c.exitOverride();
};
