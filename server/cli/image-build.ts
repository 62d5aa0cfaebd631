/**
 * `kickswarm image build (--from-tar ROOTFS.tar[.gz|.xz|.zst] | --from-dir DIR)
 * (--name NAME | --output FILE) [--size S] [--fs ext4|xfs]
 * [--firmware bios|uefi|both] [--append ARGS]`: a root file system -> a
 * partitioned, bootable disk image, added to the image store as NAME (its
 * next version when NAME exists) and/or written as a raw disk image to FILE.
 * Runs as root. Progress goes to stderr, one line per step.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError, KickswarmError } from '../../protocol/errors.js';
import { parseImageName } from '../../protocol/node.js';
import { buildDiskImage } from '../images/build/build.js';
import { FIRMWARES, parseFirmware, parseRootFs, parseSize, ROOT_FS } from '../images/build/layout.js';
import type { ImageMeta } from '../images/store.js';
import type { CliContext } from './context.js';

interface BuildFlags {
  fromTar?: string;
  fromDir?: string;
  name?: string;
  output?: string;
  size?: string;
  fs: string;
  firmware: string;
  append?: string;
}

type AddImage = (ctx: CliContext, file: string, name: string) => Promise<ImageMeta>;

async function buildImage(ctx: CliContext, o: BuildFlags, addImage: AddImage): Promise<void> {
  if (Boolean(o.fromTar) === Boolean(o.fromDir)) throw new InvalidInputError('give exactly one of --from-tar ROOTFS.tar and --from-dir DIR');
  if (!o.name && !o.output) throw new InvalidInputError('give --name NAME (add to the image store) and/or --output FILE (write the raw disk image)');
  const name = o.name === undefined ? undefined : parseImageName(o.name);
  const fsType = parseRootFs(o.fs);
  const firmware = parseFirmware(o.firmware);
  const sizeBytes = o.size === undefined ? undefined : parseSize(o.size);
  const images = ctx.dataDir().images;
  fs.mkdirSync(images, { recursive: true });
  // Without --output the raw image is a temporary file next to the store (same file system, removed afterwards).
  const raw = o.output ? path.resolve(o.output) : path.join(images, `${name}.build.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  let n = 0;
  try {
    const r = await buildDiskImage({
      source: o.fromTar ? { tar: o.fromTar } : { dir: o.fromDir! },
      output: raw,
      sizeBytes,
      fs: fsType,
      firmware,
      append: o.append,
      title: `kickswarm ${name ?? path.basename(raw)}`,
      onStep: (line) => ctx.err(`image build: [${++n}] ${line}`),
      signal: ac.signal,
    });
    ctx.err(`image build: disk image done in ${((Date.now() - started) / 1000).toFixed(1)}s (kernel ${r.kernel})`);
    if (o.output) ctx.out(`wrote ${raw}`);
    if (name) await addImage(ctx, raw, name);
  } catch (err) {
    if (ac.signal.aborted && !(err instanceof KickswarmError)) throw new Error('interrupted: nothing was built or added');
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!o.output) fs.rmSync(raw, { force: true });
  }
}

/** Adds `image build` under the `image` command; `addImage` stores the result with progress. */
export function registerImageBuild(image: Command, ctx: CliContext, addImage: AddImage): void {
  image
    .command('build')
    .description('make a partitioned, bootable disk image from a root file system (tarball or directory); needs root')
    .option('--from-tar <file>', 'rootfs tarball (.tar, .tar.gz, .tar.xz, .tar.zst), e.g. from mmdebstrap or docker export')
    .option('--from-dir <dir>', 'unpacked rootfs directory')
    .option('--name <name>', 'add the result to the image store as NAME (the next version when NAME exists)')
    .option('--output <file>', 'write the raw disk image to FILE')
    .option('--size <size>', 'disk size, e.g. 8G or 1536M (default: the rootfs plus a quarter, at least 1G)')
    .option('--fs <type>', `root file system (${ROOT_FS.join('|')})`, 'ext4')
    .option('--firmware <type>', `firmware to boot on (${FIRMWARES.join('|')})`, 'both')
    .option('--append <args>', 'extra kernel command line arguments')
    .action(async (o: BuildFlags) => buildImage(ctx, o, addImage));
}
