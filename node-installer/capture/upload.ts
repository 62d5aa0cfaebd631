/**
 * The capture's conversation with the frontend, always from the node's own
 * address (the frontend knows nodes by source IP):
 *
 * - preflight, before the long pass 1: a progress report (`writing`) whose
 *   answer names the node and its boot action, and a HEAD of
 *   `/install/images/NAME` to see that the name is free. Every request
 *   carries the node's capture session token (X-Kickswarm-Session, added by
 *   the dispatcher).
 * - the upload: one `PUT /install/sbin/public/capture.cgi?image=NAME` with
 *   the exact Content-Length and the image streamed as its body. Refusals become one-line errors with stable codes.
 */
import { Readable } from 'node:stream';
import { type Dispatcher, request } from 'undici';
import { ConflictError, CorruptImageError, ForbiddenError, KickswarmError, NotFoundError, UnauthorizedError, UnavailableError } from '../../protocol/errors.js';
import { type ImageMeta, imagePath } from '../../protocol/api.js';
import { CAPTURE_PATH, type InstallReport } from '../../protocol/install.js';
import { postInstallReport } from '../frontend-client.js';

export interface CaptureHttp {
  /** Frontend origin, e.g. `http://10.1.1.1:8080`. */
  frontend: string;
  /** Sends from the node's own address. */
  dispatcher: Dispatcher;
}

/** What the frontend answers a stored capture with. */
export type CapturedImageMeta = ImageMeta & { uploadedBytes: number };

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 300);

function unreachable(http: CaptureHttp, e: unknown): UnavailableError {
  const err = e as Error & { code?: string };
  return new UnavailableError(`cannot reach the frontend at ${http.frontend}: ${err.code ? `${err.code} ` : ''}${err.message}`);
}

/**
 * Records `report` as the node's progress; the answer names the node and its
 * boot action. NotFoundError when the frontend does not know the sender,
 * UnavailableError when it cannot be reached or answers nonsense.
 */
export async function preflight(http: CaptureHttp, report: InstallReport): Promise<{ node: string; bootAction: string }> {
  let status: number;
  let text: string;
  try {
    ({ status, body: text } = await postInstallReport(http.frontend, http.dispatcher, report, 30_000));
  } catch (e) {
    throw unreachable(http, e);
  }
  if (status === 404) throw new NotFoundError(`the frontend does not know this node (it finds nodes by source address): ${oneLine(text)}`);
  if (status === 403) throw new ForbiddenError(`the frontend refused this node's session (403): ${oneLine(text)}`);
  if (status !== 200) throw new UnavailableError(`the frontend refused a progress report (HTTP ${status}): ${oneLine(text)}`);
  try {
    const { node, bootAction } = JSON.parse(text) as { node: unknown; bootAction: unknown };
    if (typeof node === 'string' && typeof bootAction === 'string') return { node, bootAction };
  } catch {
    // answered below
  }
  throw new UnavailableError(`the frontend's answer to a progress report is not what kickswarm sends: ${oneLine(text)}`);
}

/** ConflictError when the frontend already has image `name` (HEAD /install/images/NAME is not 404). */
export async function checkImageFree(http: CaptureHttp, name: string): Promise<void> {
  let status: number;
  try {
    const res = await request(`${http.frontend}${imagePath(name)}`, { method: 'HEAD', dispatcher: http.dispatcher, headersTimeout: 30_000 });
    status = res.statusCode;
    await res.body.dump();
  } catch (e) {
    throw unreachable(http, e);
  }
  if (status >= 200 && status < 300) {
    throw new ConflictError(`image ${name} already exists on the frontend (kickswarm image remove ${name}, or capture under another name)`);
  }
}

/** The error for a refused upload: stable code, the frontend's own words. */
export function refusal(status: number, text: string, size: number): KickswarmError {
  const why = oneLine(text) || `HTTP ${status}`;
  switch (status) {
    case 401:
      return new UnauthorizedError(`the frontend refused the capture (401): ${why}`);
    case 403:
      return new ForbiddenError(`the frontend refused the capture (403): ${why}`);
    case 404:
      return new NotFoundError(`the frontend does not know this node (404): ${why}`);
    case 409:
      return new ConflictError(`the frontend refused the capture (409): ${why}`);
    case 413:
      return new ForbiddenError(`the frontend does not take uploads of ${size} bytes (413): ${why}`);
    case 503:
      return new UnavailableError(`the frontend is receiving as many captures as it takes at once (503): ${why}`);
    case 422:
      return new CorruptImageError(`the frontend rejected the uploaded image (422): ${why}`);
    default:
      return new UnavailableError(`the capture upload failed (HTTP ${status}): ${why}`);
  }
}

export interface UploadOptions {
  /** Exact body length (the plan's upload size). */
  size: number;
  /** Node name, for messages. */
  node?: string;
  /**
   * How long to hold the body after its first bytes, so that a refusal
   * (401/403/404/409/413, answered from the request headers) arrives before
   * the frontend closes a connection the node is still writing to. Default 1000 ms.
   */
  refusalGraceMs?: number;
  signal?: AbortSignal;
}

/**
 * PUTs `body` as image `name`. Resolves with the frontend's metadata of the
 * stored image (201). When `body` fails, the request is aborted (the
 * frontend then stores nothing) and that failure is what rejects.
 */
export async function uploadImage(http: CaptureHttp, name: string, body: AsyncIterable<Buffer>, o: UploadOptions): Promise<CapturedImageMeta> {
  let bodyError: unknown;
  let sent = 0;
  let answered = (): void => undefined;
  const answer = new Promise<void>((resolve) => (answered = resolve));
  const grace = o.refusalGraceMs ?? 1000;
  const guarded = (async function* () {
    try {
      for await (const b of body) {
        yield b;
        if (sent === 0 && grace > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([answer, new Promise<void>((resolve) => (timer = setTimeout(resolve, grace)))]);
          clearTimeout(timer);
        }
        sent += b.length;
      }
    } catch (e) {
      bodyError ??= e;
      throw e;
    }
  })();
  const stream = Readable.from(guarded, { objectMode: false, highWaterMark: 1 });
  // The frontend verifies and stores the whole image before it answers: allow it 1 s per 20 MiB, at least 10 min.
  const headersTimeout = Math.max(600_000, Math.ceil(o.size / (20 * 1024 * 1024)) * 1000);
  let status: number;
  let text: string;
  try {
    const res = await request(`${http.frontend}${CAPTURE_PATH}?image=${encodeURIComponent(name)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(o.size) },
      body: stream,
      dispatcher: http.dispatcher,
      signal: o.signal,
      headersTimeout,
      bodyTimeout: 60_000,
    });
    answered();
    status = res.statusCode;
    text = await res.body.text();
  } catch (e) {
    answered();
    stream.destroy();
    if (bodyError !== undefined) throw bodyError;
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    const err = e as Error & { code?: string };
    if (sent === 0) throw unreachable(http, e);
    throw new UnavailableError(
      `the frontend broke off the upload after ${sent} of ${o.size} bytes (${err.code ?? err.message}); ` + `its reason is in the node's history (kickswarm node show ${o.node ?? 'NODE'})`,
    );
  } finally {
    answered();
  }
  stream.destroy();
  if (bodyError !== undefined) throw bodyError;
  if (status !== 201) throw refusal(status, text, o.size);
  try {
    return JSON.parse(text) as CapturedImageMeta;
  } catch {
    throw new UnavailableError(`the frontend stored the capture but answered with something that is not JSON: ${oneLine(text)}`);
  }
}
