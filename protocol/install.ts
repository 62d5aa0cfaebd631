/**
 * What an installing node tells the frontend while it works, and how it asks
 * for a capture upload. Both sides parse these bodies with the functions here.
 *
 *   POST /install/sbin/public/report.cgi     JSON InstallReport; node found by source IP
 *   PUT  /install/sbin/public/capture.cgi?image=NAME
 *        Authorization: Bearer <capture token>; body: a chunked image (image-format)
 */
import { InvalidInputError } from './errors.js';
import { type InstallState, parseInstallState } from './node.js';

export const REPORT_PATH = '/install/sbin/public/report.cgi';
export const CAPTURE_PATH = '/install/sbin/public/capture.cgi';

export interface InstallReport {
  state: InstallState;
  /** Bytes of the image received so far and its total size, when known. */
  bytesDone?: number;
  bytesTotal?: number;
  /** Bytes per second since the previous report. */
  rate?: number;
  /** Bytes received from the frontend (HTTP or its seeder) and from peers. */
  bytesFromFrontend?: number;
  bytesFromPeers?: number;
  /** Why the install failed (`failed`), or a short note for other states. */
  reason?: string;
  /** The installer's own log lines since its previous report (at most MAX_REPORT_LOG_LINES). */
  log?: string[];
}

/**
 * A node's latest install progress as the frontend keeps it (inventory,
 * `/api/v1`, status): the last report's fields plus when the install started
 * (its first report) and when the latest report came, ISO 8601.
 */
export interface InstallProgress extends InstallReport {
  startedAt: string;
  updatedAt: string;
  /** The exact image version this node was last installed with (kept across later installs until one succeeds). */
  image?: InstalledImage;
}

/** An image version written to a node by a successful install. */
export interface InstalledImage {
  /** `NAME@N`. */
  ref: string;
  sha256: string;
  /** When the install finished (ISO 8601). */
  at: string;
}

/** Most log lines one report carries, and the longest line (longer ones are cut). */
export const MAX_REPORT_LOG_LINES = 200;
export const MAX_LOG_LINE_CHARS = 1000;

const COUNT_FIELDS = ['bytesDone', 'bytesTotal', 'rate', 'bytesFromFrontend', 'bytesFromPeers'] as const;

/** Validates a report body from the wire; unknown fields are ignored. */
export function parseInstallReport(body: unknown): InstallReport {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('report body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.state !== 'string') throw new InvalidInputError('report needs a "state"');
  const out: InstallReport = { state: parseInstallState(b.state) };
  for (const k of COUNT_FIELDS) {
    const v = b[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 2 ** 53) throw new InvalidInputError(`report field ${k} must be a non-negative number`);
    out[k] = Math.round(v);
  }
  if (b.reason !== undefined && b.reason !== null) {
    if (typeof b.reason !== 'string') throw new InvalidInputError('report field reason must be a string');
    out.reason = b.reason.slice(0, 500);
  }
  if (b.log !== undefined && b.log !== null) {
    if (!Array.isArray(b.log) || b.log.length > MAX_REPORT_LOG_LINES || !b.log.every((l) => typeof l === 'string')) {
      throw new InvalidInputError(`report field log must be a list of at most ${MAX_REPORT_LOG_LINES} strings`);
    }
    out.log = (b.log as string[]).map((l) => l.slice(0, MAX_LOG_LINE_CHARS));
  }
  return out;
}

/** Kernel command line keys the frontend puts in pxelinux configs. */
export const CMDLINE_FRONTEND = 'kickswarm.frontend';
export const CMDLINE_ACTION = 'kickswarm.action';
export const CMDLINE_CAPTURE_TOKEN = 'kickswarm.capture_token';

/** Reads `key=value` words from a kernel command line (`/proc/cmdline`). */
export function parseCmdline(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of text.trim().split(/\s+/)) {
    const i = w.indexOf('=');
    if (i > 0) out[w.slice(0, i)] = w.slice(i + 1);
  }
  return out;
}
