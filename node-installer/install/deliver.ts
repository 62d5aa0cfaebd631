/**
 * Gets the image onto the target by the kickstart's method and returns the
 * SHA-256 of the raw image written. Every chunk is verified before it is
 * written. HTTP streams the image in order from the frontend; the swarm path
 * takes the chunks out of order, in this node's own random order, through
 * Range requests to the localhost proxy (install/chunked.ts); multicast
 * writes chunks as they arrive. Multicast that cannot be used (no session, no
 * data for its timeout) falls back to the swarm, then to HTTP, and says so.
 * Transient failures (frontend restarting, swarm and web seed both gone for a
 * while) are retried until the deadline: HTTP from the start of the stream
 * (chunks land at fixed offsets, so a retry simply rewrites them), the swarm
 * path with the chunks it has not written yet (the proxy keeps the pieces it
 * already verified). A corrupt image or an unknown one is final.
 */
import type { Readable } from 'node:stream';
import { CorruptImageError, FallbackError, InvalidInputError, NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { applyImage, confirmApplied, type ImageSource } from '../../protocol/image-format.js';
import type { ImageDirective } from '../../protocol/kickstart.js';
import { openTarget, type TargetStats } from '../../protocol/target-file.js';
import { openImageBody } from '../fetch/http-body.js';
import { openImageStream } from '../fetch/http-stream.js';
import { type MulticastStats, receiveMulticast } from '../fetch/multicast.js';
import type { FrontendClient } from '../frontend-client.js';
import type { Logger } from '../log.js';
import type { SwarmProxy } from '../proxy/proxy.js';
import type { ProgressReporter } from '../report/progress.js';
import { applyChunksOutOfOrder } from './chunked.js';
import { applyFromSwarm } from './swarm-apply.js';

export interface DeliverOptions {
  image: ImageDirective;
  frontend: string;
  client: FrontendClient;
  /** Starts (once) and returns the localhost proxy, for method torrent and the multicast fallback. */
  proxy: () => Promise<SwarmProxy>;
  /** Multicast receiver options (method multicast). */
  multicast?: { localAddress?: string; interfaceAddress?: string; lossRate?: number; noDataTimeoutMs?: number; session?: string };
  writeZeros: boolean;
  /** Re-read the target after writing and hash it (the image directive's `--verify`). */
  verifyTarget?: boolean;
  reporter: ProgressReporter;
  log: Logger;
  deadlineSeconds: number;
}

export interface Delivered {
  sha256: string;
  bytesFromFrontend: number;
  bytesFromPeers: number;
  /** Bytes written to the target directly (O_DIRECT), and through the page cache. */
  targetDirectBytes: number;
  targetPageCacheBytes: number;
}

function isFinal(e: unknown): boolean {
  return e instanceof CorruptImageError || e instanceof NotFoundError || e instanceof InvalidInputError;
}

type Counts = { fromFrontend: number; fromPeers: number; targetDirect: number; targetPageCache: number };

/** Logs how a pass's bytes reached the target (direct writes, or the page cache and why). */
function targetLogger(o: DeliverOptions, counts: Counts): (s: TargetStats) => void {
  const MiB = 1 << 20;
  return (s) => {
    counts.targetDirect += s.directBytes;
    counts.targetPageCache += s.bufferedBytes;
    const fields = { target: o.image.target, directMiB: Math.round(s.directBytes / MiB), pageCacheMiB: Math.round(s.bufferedBytes / MiB), directOff: s.directOff };
    o.log.info(fields, s.directOff ? `target written through the page cache: ${s.directOff}` : 'target written');
  };
}

/** A progress callback that refreshes `counts` with `sample` and reports the bytes written so far. */
function reportBytes(o: DeliverOptions, counts: Counts, sample: () => void): (p: { rawDone: number; rawSize: number }) => void {
  return (p) => {
    sample();
    o.reporter.bytes({ bytesDone: p.rawDone, bytesTotal: p.rawSize, bytesFromFrontend: counts.fromFrontend, bytesFromPeers: counts.fromPeers });
  };
}

/**
 * One swarm pass: the chunks not in `done`, written straight from the swarm
 * session in this process; an image without a usable torrent goes through the
 * proxy's HTTP side (which moves it over plain HTTP), out of order.
 */
async function swarmPass(o: DeliverOptions, counts: Counts, done: Set<number>): Promise<string> {
  const { image } = o;
  const proxy = await o.proxy();
  const base = (await proxy.start()).url;
  let layout = 0;
  const sample = () => {
    const st = proxy.stats().find((s) => s.name === image.name);
    if (!st) return;
    counts.fromPeers = st.fromPeers;
    counts.fromFrontend = st.fromWebSeed + layout;
  };
  const onProgress = reportBytes(o, counts, sample);
  const direct = await applyFromSwarm({
    proxy,
    frontend: o.frontend,
    image: image.name,
    target: image.target,
    writeZeros: o.writeZeros,
    verifyTarget: o.verifyTarget,
    done,
    dispatcher: o.client.dispatcher,
    log: o.log,
    onProgress,
    onLayout: (bytes) => (layout += bytes),
    onTarget: targetLogger(o, counts),
  });
  if (direct) {
    sample();
    return direct;
  }
  const sha = await applyChunksOutOfOrder({
    base,
    image: image.name,
    target: image.target,
    writeZeros: o.writeZeros,
    verifyTarget: o.verifyTarget,
    done,
    onProgress,
    onTarget: targetLogger(o, counts),
  });
  sample();
  return sha;
}

/**
 * One HTTP pass: the image streamed in order from the frontend onto the
 * target, read into one reused buffer (http-body.ts) where the response
 * allows, else through undici.
 */
async function httpPass(o: DeliverOptions, counts: Counts): Promise<string> {
  const { image } = o;
  const body = await openImageBody({ base: o.frontend, name: image.name, localAddress: o.client.localAddress, headers: o.client.sessionHeaders });
  let source: ImageSource;
  let sample: () => void;
  if (body) {
    source = body;
    sample = () => (counts.fromFrontend = body.received);
  } else {
    o.log.debug({ image: image.name }, 'the image response is not a plain HTTP/1.1 body; reading it through undici');
    const stream: Readable = (await openImageStream(o.frontend, image.name, o.client.dispatcher)).body;
    let streamed = 0;
    source = (async function* counted() {
      for await (const chunk of stream) {
        streamed += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    })();
    sample = () => (counts.fromFrontend = streamed);
  }
  const sha = await applyImage(source, image.target, { writeZeros: o.writeZeros, verifyTarget: o.verifyTarget, onProgress: reportBytes(o, counts, sample), onTarget: targetLogger(o, counts) });
  sample();
  return sha;
}

/** Multicast: chunks arrive in any order and are written where they belong (each verified first). */
async function multicastPass(o: DeliverOptions, counts: Counts): Promise<string> {
  const target = await openTarget(o.image.target, 0);
  let stats: MulticastStats;
  try {
    stats = await receiveMulticast({
      frontend: o.frontend,
      image: o.image.name,
      ...o.multicast,
      writeZeros: o.writeZeros,
      log: o.log,
      writeChunk: (_n, offset, raw) => target.write(raw, offset),
      onProgress: (p) => {
        counts.fromFrontend = p.bytesReceived;
        o.reporter.bytes({ bytesDone: p.rawDone, bytesTotal: p.rawTotal, bytesFromFrontend: p.bytesReceived, bytesFromPeers: 0 });
      },
    });
    await target.sync();
  } finally {
    await target.close();
    targetLogger(o, counts)(target.stats);
  }
  counts.fromFrontend = stats.bytesReceived;
  if (o.verifyTarget) await o.reporter.setState('verifying', 'hashing the written image');
  return confirmApplied(o.image.target, stats.header, { unwritten: Math.max(0, stats.header.storedChunks - stats.chunksWritten), readBack: o.verifyTarget });
}

/** The methods to try, in order: multicast falls back to the swarm, then HTTP. */
function methodsFor(method: ImageDirective['method']): ('multicast' | 'torrent' | 'http')[] {
  return method === 'multicast' ? ['multicast', 'torrent', 'http'] : [method];
}

export async function deliverImage(o: DeliverOptions): Promise<Delivered> {
  const methods = methodsFor(o.image.method);
  for (let i = 0; i < methods.length; i++) {
    const method = methods[i]!;
    try {
      return await deliverBy(o, method);
    } catch (e) {
      if (!(e instanceof FallbackError) || i === methods.length - 1) throw e;
      o.log.warn({ from: method, to: methods[i + 1], why: e.message }, `${method} unusable; falling back to ${methods[i + 1]}`);
      await o.reporter.setState('downloading', `${method} unusable (${e.message.slice(0, 120)}); falling back to ${methods[i + 1]}`);
    }
  }
  throw new UnavailableError('no delivery method left');
}

async function deliverBy(o: DeliverOptions, method: 'multicast' | 'torrent' | 'http'): Promise<Delivered> {
  const counts: Counts = { fromFrontend: 0, fromPeers: 0, targetDirect: 0, targetPageCache: 0 };
  if (method === 'multicast') {
    const sha = await multicastPass(o, counts);
    return { sha256: sha, bytesFromFrontend: counts.fromFrontend, bytesFromPeers: 0, targetDirectBytes: counts.targetDirect, targetPageCacheBytes: counts.targetPageCache };
  }
  const deadline = Date.now() + o.deadlineSeconds * 1000;
  const done = new Set<number>();
  let backoff = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const sha = method === 'torrent' ? await swarmPass(o, counts, done) : await httpPass(o, counts);
      return { sha256: sha, bytesFromFrontend: counts.fromFrontend, bytesFromPeers: counts.fromPeers, targetDirectBytes: counts.targetDirect, targetPageCacheBytes: counts.targetPageCache };
    } catch (e) {
      if (isFinal(e) || Date.now() + backoff > deadline) throw e;
      o.log.warn({ attempt, err: (e as Error).message, retryInMs: backoff }, 'image transfer broke off; retrying');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
}
