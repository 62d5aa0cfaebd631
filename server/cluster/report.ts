/**
 * How an installing node's report updates its stored install progress, and
 * which reports are worth an event in the node's history. Pure functions.
 */
import type { InstallReport } from '../../protocol/install.js';
import type { InstallProgress } from '../inventory/types.js';
import { isActiveState } from './status.js';

/** Byte counts that carry over from earlier reports of the same install; `rate` never does. */
const CARRIED = ['bytesDone', 'bytesTotal', 'bytesFromFrontend', 'bytesFromPeers'] as const;

/**
 * True when `report` begins a new install rather than continuing `current`:
 * there is no current install, or the report is `profile` after any other
 * state, or an active state follows a finished (`done`/`failed`) install.
 */
export function startsNewInstall(current: InstallProgress | null, report: InstallReport): boolean {
  if (!current) return true;
  if (report.state === 'profile') return current.state !== 'profile';
  return !isActiveState(current.state) && isActiveState(report.state);
}

export interface AppliedReport {
  /** What to store. */
  progress: InstallProgress;
  /** The report began a new install. */
  newInstall: boolean;
  /** The event to record, or undefined when the report only updates byte counts. */
  event?: string;
}

/**
 * The progress to store after `report` arrives at `now`, and the event it is
 * worth. Within one install `startedAt` is kept and byte counts the report
 * leaves out keep their last value (a `verifying` report need not repeat the
 * size); `rate` and `reason` are only what this report says. A new install
 * starts from the report alone. An event is due when the state changes, an
 * install starts, or a report brings a new note within the same state; `failed` events carry the reason.
 */
export function applyReport(current: InstallProgress | null, report: InstallReport, now: Date): AppliedReport {
  const at = now.toISOString();
  const newInstall = startsNewInstall(current, report);
  const prev = newInstall ? null : current;
  const progress: InstallProgress = { state: report.state, startedAt: prev ? prev.startedAt : at, updatedAt: at };
  for (const k of CARRIED) {
    const v = report[k] ?? prev?.[k];
    if (v !== undefined) progress[k] = v;
  }
  // The last installed image survives new installs; the route replaces it when one succeeds.
  if (current?.image) progress.image = current.image;
  if (report.rate !== undefined) progress.rate = report.rate;
  if (report.reason !== undefined) progress.reason = report.reason;
  if (prev && prev.state === report.state) {
    const note = report.reason && report.reason !== prev.reason ? `install ${report.state}: ${report.reason}` : undefined;
    return note ? { progress, newInstall, event: note } : { progress, newInstall };
  }
  const from = prev ? prev.state : 'start';
  let event: string;
  if (report.state === 'failed') event = `install ${from} -> failed: ${report.reason ?? 'no reason given'}`;
  else if (report.state === 'done') {
    const secs = (now.getTime() - Date.parse(progress.startedAt)) / 1000;
    event = `install ${from} -> done in ${Number.isFinite(secs) ? secs.toFixed(1) : '?'} s`;
  } else event = `install ${from} -> ${report.state}${report.reason ? ` (${report.reason})` : ''}`;
  return { progress, newInstall, event };
}
