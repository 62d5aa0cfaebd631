/**
 * `kickswarm-install run`: one node's whole install, in order:
 * kickstart -> %pre -> image (torrent via the localhost proxy, multicast, or
 * HTTP) written chunk by chunk into the target -> fsync -> SHA-256 check ->
 * %post -> boot flip to `os` -> linger seeding -> reboot / kexec / nothing.
 * Any failure reports `failed` with the reason and leaves the boot action at
 * `install`, so the node simply reinstalls on its next boot.
 */
import fs from 'node:fs';
import { KickswarmError } from '../../protocol/errors.js';
import { type ImageDirective, type Kickstart, parseKickstart } from '../../protocol/kickstart.js';
import type { Mac } from '../../protocol/node.js';
import { FrontendClient } from '../frontend-client.js';
import type { Logger } from '../log.js';
import type { SwarmProxy } from '../proxy/proxy.js';
import { type LogSource, ProgressReporter } from '../report/progress.js';
import { deliverImage } from './deliver.js';
import { type PreparedBoot, prepareBoot, type RebootMode } from './finish.js';
import { runScript } from './scripts.js';
import { writeSecrets } from './secrets.js';
import { mountTargetRoot } from './target.js';
import { setEfiBootNext } from './efiboot.js';

export interface RunOptions {
  /** The installer's log lines to send with progress reports. */
  logTail?: LogSource;
  frontend: string;
  mac?: Mac;
  /** Overrides the kickstart's image target. */
  target?: string;
  /** The node's own address (127.0.x.y when several nodes share one machine). */
  localAddress?: string;
  /** The install session token (`kickswarm.session=`), sent with every request to the frontend. */
  session?: string;
  /** What to do at the end: `auto` = kexec when possible, else reboot. */
  reboot: RebootMode;
  /** Seconds to keep seeding after success (default 30). */
  linger: number;
  /** Called when the linger starts; resolving ends it early (SIGINT/SIGTERM of the CLI). */
  interrupted?: () => Promise<unknown>;
  /** Seconds to keep retrying the frontend before giving up (default 600). */
  deadlineSeconds: number;
  /** Seconds without swarm progress before the proxy falls back to the web seed. */
  stallTimeout?: number;
  /** Multicast options (method multicast). */
  multicast?: { interfaceAddress?: string; lossRate?: number; noDataTimeoutMs?: number };
  log: Logger;
}

export interface RunResult {
  node?: string;
  image?: string;
  sha256?: string;
  bytesFromFrontend: number;
  bytesFromPeers: number;
  /** Wall seconds from the start of the install to its end (the linger included). */
  seconds: number;
  /** Wall seconds the image's delivery took (fetch, verify, write; no kickstart, %post or linger). */
  deliverySeconds: number;
  /** CPU seconds (user + system) of this process, from its start to the end of the install. */
  cpuSeconds: number;
  /** CPU seconds spent while the image was delivered (fetch, verify, write, hash). */
  deliveryCpuSeconds: number;
  /** Peak resident set size of this process, MiB. */
  peakRssMb: number;
  /** Minor page faults of this process (fresh memory touched), from its start to the end of the install. */
  pageFaults: number;
  /** Image bytes written to the target directly (O_DIRECT), and through the page cache. */
  targetDirectBytes: number;
  targetPageCacheBytes: number;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Fresh targets skip zero chunks; a target that may hold old data gets them written. */
function prepareTarget(target: string, size: number | undefined): { writeZeros: boolean } {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(target);
  } catch {
    st = undefined;
  }
  if (!st) {
    fs.writeFileSync(target, Buffer.alloc(0));
    if (size) fs.truncateSync(target, size);
    return { writeZeros: false };
  }
  if (st.isBlockDevice()) return { writeZeros: true };
  if (!st.isFile()) throw new KickswarmError('invalid_input', `target ${target} is neither a block device nor a file`);
  return { writeZeros: st.size > 0 };
}

export async function runInstall(o: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const log = o.log;
  const client = new FrontendClient({ frontend: o.frontend, localAddress: o.localAddress, mac: o.mac, session: o.session, log, deadlineSeconds: o.deadlineSeconds });
  const reporter = new ProgressReporter(client, log, 1000, Date.now, o.logTail);
  const counts = { fromFrontend: 0, fromPeers: 0 };
  let proxy: SwarmProxy | undefined;
  let ks: Kickstart | undefined;
  try {
    await reporter.setState('profile');
    ks = parseKickstart(await client.fetchKickstart());
    for (const c of ks.unknownCommands) log.info({ command: c.name, line: c.line }, 'kickstart command not used by kickswarm-install; ignored');
    if (!ks.image) throw new KickswarmError('invalid_input', 'the kickstart has no `%addon org_kickswarm` image directive (give the profile an image)');
    const image: ImageDirective = { ...ks.image, target: o.target ?? ks.image.target };
    const node = ks.commands
      .find((c) => c.name === 'network')
      ?.args.find((a) => a.startsWith('--hostname='))
      ?.slice('--hostname='.length);
    const env = { target: image.target, frontend: o.frontend, node, session: o.session };
    for (const s of ks.pre) await runScript(s, env, log);

    const { writeZeros } = prepareTarget(image.target, image.size);
    await reporter.setState('downloading', `${image.name} via ${image.method}`);
    const startProxy = async (): Promise<SwarmProxy> => {
      // Loaded on first use: webtorrent costs about 0.45 CPU-s to load, which HTTP and multicast installs do not need.
      const { SwarmProxy } = await import('../proxy/proxy.js');
      proxy ??= new SwarmProxy({ frontend: o.frontend, localAddress: o.localAddress, session: o.session, linger: o.linger, stallTimeout: o.stallTimeout, log });
      await proxy.start();
      return proxy;
    };
    const cpuBefore = cpuNow();
    const deliveryStarted = Date.now();
    const got = await deliverImage({
      image,
      frontend: o.frontend,
      client,
      proxy: startProxy,
      multicast: { localAddress: o.localAddress, session: o.session, ...o.multicast },
      writeZeros,
      verifyTarget: image.verify,
      reporter,
      log,
      deadlineSeconds: o.deadlineSeconds,
    });
    const deliveryCpuSeconds = cpuNow() - cpuBefore;
    const deliverySeconds = (Date.now() - deliveryStarted) / 1000;
    const sha = got.sha256;
    counts.fromFrontend = got.bytesFromFrontend;
    counts.fromPeers = got.bytesFromPeers;
    await reporter.setState('verifying');
    if (image.sha256 && sha !== image.sha256) {
      throw new KickswarmError('corrupt_image', `image ${image.name}: SHA-256 of what was written is ${sha}, the kickstart says ${image.sha256}`);
    }
    await reporter.setState('post');
    const secrets = o.session ? await client.fetchSecrets() : [];
    // The root is mounted for secrets, %post in the chroot, and to find the installed kernel for kexec.
    const mounted = secrets.length > 0 || ks.post.some((s) => !s.nochroot) || o.reboot !== 'none' ? await mountTargetRoot(image.target, log) : undefined;
    let boot: PreparedBoot;
    try {
      if (secrets.length > 0) {
        if (!mounted) throw new KickswarmError('invalid_input', `the profile has ${secrets.length} secret file(s) but the target holds no mountable root filesystem to write them into`);
        writeSecrets(mounted.root, secrets, log);
      }
      for (const s of ks.post) await runScript(s, { ...env, root: mounted?.root }, log);
      // Progress is reported before the flip: the flip to os ends the install session that reports need.
      await reporter.setState('done', `sha256 ${sha.slice(0, 16)}…, ${counts.fromPeers} bytes from peers, ${counts.fromFrontend} from the frontend`);
      await reporter.flush();
      await client.setBootAction('os');
      // Root still mounted: kexec loads the installed kernel from it.
      boot = await prepareBoot({ mode: o.reboot, kickstart: ks, root: mounted?.root, log });
      // UEFI: the firmware's next boot is the installed disk (a BIOS machine PXE-boots into localboot).
      if (boot.mode === 'reboot') await setEfiBootNext({ target: image.target, log });
    } finally {
      await mounted?.close();
    }
    await lingerAndClose(proxy, o.linger, log, o.interrupted);
    const result = {
      node,
      image: image.name,
      sha256: sha,
      bytesFromFrontend: counts.fromFrontend,
      bytesFromPeers: counts.fromPeers,
      seconds: (Date.now() - started) / 1000,
      deliverySeconds,
      cpuSeconds: cpuNow(),
      deliveryCpuSeconds,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      pageFaults: process.resourceUsage().minorPageFault,
      targetDirectBytes: got.targetDirectBytes,
      targetPageCacheBytes: got.targetPageCacheBytes,
    };
    await boot.go();
    return result;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    log.error({ err: reason }, 'install failed');
    await reporter.setState('failed', reason.slice(0, 400));
    throw e;
  } finally {
    await reporter.flush();
    await proxy?.close();
    await client.close();
  }
}

/** Keeps serving pieces to other nodes for `linger` seconds (or until interrupted), then leaves the swarm. */
async function lingerAndClose(proxy: SwarmProxy | undefined, linger: number, log: Logger, interrupted?: () => Promise<unknown>): Promise<void> {
  if (!proxy || linger <= 0) return;
  log.info({ seconds: linger }, 'lingering in the swarm to serve other nodes');
  let timer: NodeJS.Timeout | undefined;
  const signal = await Promise.race([new Promise((r) => (timer = setTimeout(r, linger * 1000))), interrupted?.() ?? new Promise(() => undefined)]);
  clearTimeout(timer);
  if (typeof signal === 'string') log.info({ signal }, 'linger cut short');
  await proxy.close();
}
