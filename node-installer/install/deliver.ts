/**
 * Gets the image onto the target by the kickstart's method and returns the
 * SHA-256 of the raw image written. Every chunk is verified before it is
 * written. Transient failures (frontend restarting, swarm and web seed both
 * gone for a while) are retried from the start of the stream until the
 * deadline; chunks land at fixed offsets, so a retry simply rewrites them, and
 * the proxy keeps the pieces it already verified. A corrupt image or an
 * unknown one is final.
 */
import { pipeline, type Readable, Transform } from 'node:stream';
import { CorruptImageError, InvalidInputError, NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { applyImage } from '../../protocol/image-format.js';
import type { ImageDirective } from '../../protocol/kickstart.js';
import { openImageStream } from '../fetch/http-stream.js';
import type { FrontendClient } from '../frontend-client.js';
import type { Logger } from '../log.js';
import type { SwarmProxy } from '../proxy/proxy.js';
import type { ProgressReporter } from '../report/progress.js';

export interface DeliverOptions {
  image: ImageDirective;
  frontend: string;
  client: FrontendClient;
  /** The running localhost proxy (method torrent). */
  proxy?: SwarmProxy;
  writeZeros: boolean;
  reporter: ProgressReporter;
  log: Logger;
  deadlineSeconds: number;
}

export interface Delivered {
  sha256: string;
  bytesFromFrontend: number;
  bytesFromPeers: number;
}

function isFinal(e: unknown): boolean {
  return e instanceof CorruptImageError || e instanceof NotFoundError || e instanceof InvalidInputError;
}

/** One pass: open the stream (proxy or frontend) and apply it to the target. */
async function onePass(o: DeliverOptions, counts: { fromFrontend: number; fromPeers: number }): Promise<string> {
  const { image, proxy } = o;
  let source: Readable;
  if (image.method === 'torrent') {
    if (!proxy) throw new InvalidInputError('method torrent needs the localhost proxy');
    source = (await openImageStream((await proxy.start()).url, image.name)).body;
  } else {
    source = (await openImageStream(o.frontend, image.name, o.client.dispatcher)).body;
  }
  let streamed = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      streamed += chunk.length;
      cb(null, chunk);
    },
  });
  pipeline(source, counted, () => undefined);
  const sample = () => {
    const st = proxy?.stats().find((s) => s.name === image.name);
    if (st) {
      counts.fromPeers = st.fromPeers;
      counts.fromFrontend = st.fromWebSeed;
    } else if (image.method === 'http') {
      counts.fromFrontend = streamed;
    }
  };
  let total = image.size;
  const sha = await applyImage(counted, image.target, {
    writeZeros: o.writeZeros,
    onHeader: (h) => {
      total = h.rawSize;
    },
    onProgress: (p) => {
      sample();
      o.reporter.bytes({ bytesDone: p.rawDone, bytesTotal: total, bytesFromFrontend: counts.fromFrontend, bytesFromPeers: counts.fromPeers });
    },
  });
  sample();
  return sha;
}

export async function deliverImage(o: DeliverOptions): Promise<Delivered> {
  if (o.image.method === 'multicast') throw new UnavailableError('method multicast is not available in this installer build');
  const counts = { fromFrontend: 0, fromPeers: 0 };
  const deadline = Date.now() + o.deadlineSeconds * 1000;
  let backoff = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const sha = await onePass(o, counts);
      return { sha256: sha, bytesFromFrontend: counts.fromFrontend, bytesFromPeers: counts.fromPeers };
    } catch (e) {
      if (isFinal(e) || Date.now() + backoff > deadline) throw e;
      o.log.warn({ attempt, err: (e as Error).message, retryInMs: backoff }, 'image transfer broke off; retrying');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
}
