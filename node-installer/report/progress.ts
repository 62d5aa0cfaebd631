/**
 * Install progress: state changes go to the frontend at once, byte counts at
 * most about once a second. The installer's own log gets the same lines.
 * Reports are best effort, except `done`: a node that finished goes on to
 * its OS and the frontend would never hear of it again, so that one goes
 * through the sink's `reportSurely` (retried until delivered or the
 * deadline) where the sink has one. `failed` stays best effort: the install
 * may be failing because the frontend cannot be reached.
 */
import type { InstallReport } from '../../protocol/install.js';
import type { InstallState } from '../../protocol/node.js';
import type { Logger } from '../log.js';

export interface ReportSink {
  report(r: InstallReport): Promise<void>;
  /** Delivers `r` or gives up at a deadline; never throws. */
  reportSurely?(r: InstallReport): Promise<void>;
}

export interface ByteCounts {
  bytesDone: number;
  bytesTotal?: number;
  bytesFromFrontend?: number;
  bytesFromPeers?: number;
}

/** Where the reporter takes the log lines each report carries. */
export interface LogSource {
  drain(): string[];
}

export class ProgressReporter {
  private state: InstallState = 'profile';
  private last: ByteCounts = { bytesDone: 0 };
  private lastSentAt = 0;
  private lastSentBytes = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: ReportSink,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
    private readonly logSource?: LogSource,
  ) {}

  get current(): InstallState {
    return this.state;
  }

  /** A state change (sent at once, in order). */
  setState(state: InstallState, reason?: string): Promise<void> {
    this.state = state;
    this.log.info({ state, reason }, `install state: ${state}${reason ? ` (${reason})` : ''}`);
    return this.send(reason, state === 'done');
  }

  /** Byte progress; sent when at least `intervalMs` passed since the last report. */
  bytes(c: ByteCounts): void {
    this.last = c;
    if (this.now() - this.lastSentAt >= this.intervalMs) void this.send();
  }

  /** Waits for reports in flight. */
  flush(): Promise<void> {
    return this.pending;
  }

  private send(reason?: string, surely = false): Promise<void> {
    const t = this.now();
    const dt = (t - this.lastSentAt) / 1000;
    const rate = this.lastSentAt && dt > 0 ? Math.max(0, (this.last.bytesDone - this.lastSentBytes) / dt) : undefined;
    this.lastSentAt = t;
    this.lastSentBytes = this.last.bytesDone;
    const lines = this.logSource?.drain() ?? [];
    const r: InstallReport = { state: this.state, ...this.last, ...(rate !== undefined ? { rate } : {}), ...(reason ? { reason } : {}), ...(lines.length ? { log: lines } : {}) };
    const sink = this.sink;
    this.pending = this.pending.then(() => (surely && sink.reportSurely ? sink.reportSurely(r) : sink.report(r)));
    return this.pending;
  }
}
