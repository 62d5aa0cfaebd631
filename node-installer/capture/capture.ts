/**
 * `kickswarm-install capture` as a function: captures a disk (or file) as a
 * kickswarm image on the frontend, streamed, with no local copy of the image.
 *
 *   open source -> preflight (node known, boot action capture, name free)
 *   -> pass 1: read + compress every chunk, keep only the index (scan.ts)
 *   -> pass 2: PUT header + index + re-read, re-compressed chunks (body.ts)
 *   -> the frontend verifies every chunk, stores the image, flips the node to `os`
 *
 * The node's progress goes to the frontend as state `writing`, bytesTotal =
 * 2 x raw size (each pass reads the source once), then `done` or `failed`
 * with a reason that begins "capture".
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ForbiddenError, InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import type { InstallReport } from '../../protocol/install.js';
import { checkChunkSize, DEFAULT_CHUNK_SIZE, INDEX_ENTRY_SIZE, MAX_CHUNK_SIZE, MAX_INDEX_BYTES } from '../../protocol/image-format.js';
import { parseImageName } from '../../protocol/node.js';
import { isSessionTokenShape } from '../../protocol/session.js';
import { FrontendClient } from '../frontend-client.js';
import type { Logger } from '../log.js';
import { ProgressReporter } from '../report/progress.js';
import { imageBody } from './body.js';
import { scanSource } from './scan.js';
import { openCaptureSource } from './source.js';
import { type CaptureHttp, type CapturedImageMeta, checkImageFree, preflight, uploadImage } from './upload.js';

export interface CaptureOptions {
  /** Frontend origin, e.g. `http://10.1.1.1:8080`. */
  frontend: string;
  /** Disk (block device) or regular file to capture. */
  source: string;
  /** Name of the new image on the frontend. */
  image: string;
  /** This node's capture session token (`kickswarm.session=` on its kernel command line), sent with every request. */
  token: string;
  /** The node's own address to send from (simulated nodes on one machine). */
  localAddress?: string;
  /** Power of two, 64 KiB..16 MiB; default 1 MiB. */
  chunkSize?: number;
  /** Deflate level 1..9; default 6. */
  level?: number;
  /** Chunks read and compressed in parallel; default available parallelism, at least 2. */
  concurrency?: number;
  /** Seconds to keep trying a frontend that cannot be reached before the capture starts; default 60. */
  deadlineSeconds?: number;
  signal?: AbortSignal;
  log: Logger;
  onProgress?: (p: CaptureProgress) => void;
}

/** `scan`: pass 1, raw bytes read of `total` = raw size. `upload`: pass 2, body bytes sent of `total` = upload size. */
export interface CaptureProgress {
  phase: 'scan' | 'upload';
  done: number;
  total: number;
}

export interface CaptureResult {
  node: string;
  /** The frontend's record of the stored image. */
  image: CapturedImageMeta;
  rawSize: number;
  /** Bytes sent (header + index + compressed chunks). */
  uploadSize: number;
  chunkCount: number;
  storedChunks: number;
  /** SHA-256 (hex) of the raw source as captured. */
  sha256: string;
  scanSeconds: number;
  uploadSeconds: number;
  seconds: number;
}

/** An image name the frontend's store accepts; InvalidInputError otherwise. */
export const parseCaptureImageName = (input: string): string => parseImageName(input);

function checkOptions(o: CaptureOptions): { name: string; chunkSize: number; level: number; concurrency: number } {
  const name = parseCaptureImageName(o.image);
  const chunkSize = checkChunkSize(o.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const level = o.level ?? 6;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new InvalidInputError(`compression level ${level} must be a whole number from 1 to 9`);
  const concurrency = o.concurrency ?? Math.max(2, os.availableParallelism());
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new InvalidInputError(`concurrency ${concurrency} must be a whole number from 1 to 64`);
  if (!isSessionTokenShape(o.token)) throw new InvalidInputError('the capture session token must be 43 base64url characters');
  return { name, chunkSize, level, concurrency };
}

/** InvalidInputError when an image of `rawSize` bytes could need an index larger than readers accept. */
function checkIndexFits(rawSize: number, chunkSize: number): void {
  const fits = (c: number): boolean => Math.ceil(rawSize / c) * INDEX_ENTRY_SIZE <= MAX_INDEX_BYTES;
  if (fits(chunkSize)) return;
  let c = chunkSize;
  while (c < MAX_CHUNK_SIZE && !fits(c)) c *= 2;
  throw new InvalidInputError(
    `chunk size ${chunkSize} is too small for ${rawSize} bytes (the image index could pass ${MAX_INDEX_BYTES} bytes); use --chunk-size ${c >= 1 << 20 ? `${c >> 20}M` : `${c >> 10}K`} or more`,
  );
}

/** preflight, tried again (1 s doubling, at most 15 s apart) while the frontend cannot be reached, until the deadline. */
async function preflightRetrying(http: CaptureHttp, report: InstallReport, o: CaptureOptions, log: Logger): ReturnType<typeof preflight> {
  const deadline = Date.now() + (o.deadlineSeconds ?? 60) * 1000;
  let wait = 1000;
  for (;;) {
    try {
      return await preflight(http, report);
    } catch (e) {
      if (!(e instanceof UnavailableError) || Date.now() + wait > deadline) throw e;
      log.warn({ err: e.message, retryInMs: wait }, 'frontend not reachable; retrying');
      await sleep(wait, undefined, { signal: o.signal }).catch(() => o.signal?.throwIfAborted());
      wait = Math.min(wait * 2, 15_000);
    }
  }
}

/**
 * Captures `o.source` as image `o.image` on the frontend. Resolves once the
 * frontend has verified and stored the image (and set the node's boot action
 * to `os`). Rejects with the frontend's refusal (401/403/404/409/413/422),
 * SourceChangedError when the source changed between the passes, or the
 * signal's reason; the frontend then stores nothing.
 */
export async function captureImage(o: CaptureOptions): Promise<CaptureResult> {
  const started = Date.now();
  const { name, chunkSize, level, concurrency } = checkOptions(o);
  const log = o.log.child({ capture: name });
  const src = await openCaptureSource(o.source);
  const client = new FrontendClient({ frontend: o.frontend, localAddress: o.localAddress, session: o.token, log });
  const http = { frontend: client.frontend, dispatcher: client.dispatcher };
  const reporter = new ProgressReporter(client, log);
  const total = 2 * src.size;
  let reported = false;
  try {
    checkIndexFits(src.size, chunkSize);
    const first = `capture of ${name} from ${o.source}: pass 1 of 2, reading`;
    const pre = await preflightRetrying(http, { state: 'writing', bytesDone: 0, bytesTotal: total, reason: first }, o, log);
    reported = true;
    if (pre.bootAction !== 'capture') {
      throw new ForbiddenError(`node ${pre.node} has boot action ${pre.bootAction}, not capture (on the frontend: kickswarm boot set ${pre.node} --action capture)`);
    }
    await checkImageFree(http, name);
    await reporter.setState('writing', first);
    log.info({ node: pre.node, source: o.source, kind: src.kind, rawSize: src.size, chunkSize, level, concurrency }, 'capture pass 1: reading the source');

    const plan = await scanSource(src, {
      chunkSize,
      level,
      concurrency,
      signal: o.signal,
      onProgress: (rawDone) => {
        o.onProgress?.({ phase: 'scan', done: rawDone, total: src.size });
        reporter.bytes({ bytesDone: rawDone, bytesTotal: total });
      },
    });
    const scanned = Date.now();
    const h = plan.header;
    log.info({ chunks: h.chunkCount, stored: h.storedChunks, uploadSize: plan.uploadSize, sha256: h.sha256 }, 'capture pass 2: uploading');
    await reporter.setState('writing', `capture of ${name}: pass 2 of 2, uploading ${plan.uploadSize} bytes`);
    o.onProgress?.({ phase: 'upload', done: 0, total: plan.uploadSize });

    const body = imageBody(src, plan, {
      concurrency,
      signal: o.signal,
      onProgress: (p) => {
        o.onProgress?.({ phase: 'upload', done: p.sent, total: plan.uploadSize });
        reporter.bytes({ bytesDone: src.size + p.rawDone, bytesTotal: total });
      },
    });
    const meta = await uploadImage(http, name, body, { size: plan.uploadSize, node: pre.node, signal: o.signal });
    const done = Date.now();
    await reporter.setState('done', `captured image ${name}: ${h.rawSize} bytes raw, ${plan.uploadSize} uploaded, sha256 ${h.sha256.slice(0, 16)}`);
    return {
      node: pre.node,
      image: meta,
      rawSize: h.rawSize,
      uploadSize: plan.uploadSize,
      chunkCount: h.chunkCount,
      storedChunks: h.storedChunks,
      sha256: h.sha256,
      scanSeconds: (scanned - started) / 1000,
      uploadSeconds: (done - scanned) / 1000,
      seconds: (done - started) / 1000,
    };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    log.warn({ err: reason }, 'capture failed');
    if (reported) await reporter.setState('failed', `capture of ${name} failed: ${reason}`.slice(0, 400));
    throw e;
  } finally {
    await reporter.flush();
    await src.close();
    await client.close();
  }
}
