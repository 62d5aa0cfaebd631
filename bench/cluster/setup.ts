/**
 * The frontend's data dir for a run, made the way an admin makes one: the
 * image and the nodes go in through the `kickswarm` CLI; the profile (a copy
 * of the demo's, whose %post leaves the target untouched so every target can
 * be checked byte for byte) and the config file are written into it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImageMeta } from '../../protocol/api.js';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { simulatedNodeProfile } from '../../server/demo/run.js';
import type { Method } from './bound.js';
import { type DataKind, writeBenchImage } from './image.js';
import type { Runtime } from './runtime.js';

const run = promisify(execFile);

export const IMAGE_NAME = 'bench';
export const APPLIANCE = 'bench';

/** The demo's appliance (server/demo/run.ts): %post runs on the installer and leaves the target alone. */
const PROFILE = simulatedNodeProfile('bench:cluster', 'Benchmark node (kickswarm bench:cluster)');

export interface BenchNodeSpec {
  name: string;
  mac: string;
  ip: string;
  target: string;
}

export type { ImageMeta } from '../../protocol/api.js';

export interface PreparedData {
  dataDir: string;
  image: ImageMeta;
  nodes: BenchNodeSpec[];
}

export interface SetupOptions {
  work: string;
  runtime: Runtime;
  method: Method;
  imageMb: number;
  data: DataKind;
  frontendIp: string;
  nodeIps: string[];
  /** The multicast sender's cap, bytes of datagrams per second. */
  multicastRateBytesPerSec: number;
  /** The multicast DATA payload bytes (the frontend's multicast.blockSize; default: its default, 1400). */
  multicastBlockSize?: number;
  say: (line: string) => void;
}

/** Runs `kickswarm --data-dir D ...` and returns its stdout. */
export async function kickswarmCli(runtime: Runtime, dataDir: string, args: string[]): Promise<string> {
  const [cmd, ...base] = runtime.server;
  try {
    const { stdout } = await run(cmd!, [...base, '--data-dir', dataDir, ...args], { cwd: PACKAGE_ROOT, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kickswarm ${args.slice(0, 2).join(' ')} failed: ${(err.stderr ?? '').trim().split('\n').slice(0, 3).join(' ') || err.message}`);
  }
}

export async function prepareData(o: SetupOptions): Promise<PreparedData> {
  const dataDir = path.join(o.work, 'data');
  const raw = path.join(o.work, 'image.raw');
  o.say(`writing a ${o.imageMb} MiB ${o.data} image`);
  await writeBenchImage(raw, o.imageMb, o.data);
  await kickswarmCli(o.runtime, dataDir, ['image', 'add', raw, '--name', IMAGE_NAME]);
  fs.rmSync(raw);
  const list = JSON.parse(await kickswarmCli(o.runtime, dataDir, ['image', 'list', '--json'])) as (ImageMeta & { name: string })[];
  const meta = list.find((i) => i.name === IMAGE_NAME);
  if (!meta) throw new Error('the image is not in `kickswarm image list` after `image add`');
  o.say(`image ${IMAGE_NAME}: ${meta.rawSize} bytes raw, ${meta.storedSize} bytes stored (${meta.storedChunks} chunks of ${meta.chunkSize / 1024} KiB)`);

  fs.writeFileSync(path.join(dataDir, 'profiles', `${APPLIANCE}.yaml`), PROFILE);
  fs.writeFileSync(
    path.join(dataDir, 'kickswarm.yaml'),
    [
      '# Written by bench:cluster.',
      'multicast:',
      `  interface: ${o.frontendIp}`,
      `  rateBytesPerSec: ${Math.floor(o.multicastRateBytesPerSec)}`,
      ...(o.multicastBlockSize ? [`  blockSize: ${o.multicastBlockSize}`] : []),
      '',
    ].join('\n'),
  );

  const targets = path.join(o.work, 'targets');
  fs.mkdirSync(targets);
  const nodes: BenchNodeSpec[] = o.nodeIps.map((ip, i) => ({
    name: `bench-0-${i}`,
    mac: `52:54:00:6b:00:${(i + 1).toString(16).padStart(2, '0')}`,
    ip,
    target: path.join(targets, `bench-0-${i}.disk`),
  }));
  // One at a time: Inventory.addNode's deferred transaction (read, then write) fails at once
  // with SQLITE_BUSY instead of waiting when another CLI process writes in between.
  for (const n of nodes) {
    // prettier-ignore
    await kickswarmCli(o.runtime, dataDir, [
      'node', 'add', n.name, '--mac', n.mac, '--ip', n.ip, '--appliance', APPLIANCE, '--rack', '0', '--rank', n.name.split('-')[2]!,
      '--attr', `image.name=${IMAGE_NAME}`, '--attr', `image.method=${o.method}`, '--attr', `image.target=${n.target}`,
    ]);
  }
  await kickswarmCli(o.runtime, dataDir, ['boot', 'set', '--all', '--action', 'install']);
  o.say(`${nodes.length} node(s) registered (${nodes[0]!.ip}..${nodes[nodes.length - 1]!.ip}), boot action install, method ${o.method}`);
  return { dataDir, image: meta, nodes };
}
