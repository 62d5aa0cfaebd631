/**
 * The data dir's serve lock: at most one `kickswarm serve` per data dir.
 *
 * `<data-dir>/serve.lock` holds the holder's PID and its process start time
 * (from /proc, so a PID the kernel has since given to another process is not
 * mistaken for the holder). The file is created atomically (written under a
 * private name, then hard-linked into place, which fails if a lock exists).
 * A lock whose holder is gone (kill -9, power loss) is taken over: it is
 * renamed aside (only one contender can rename a given file), checked to be
 * the stale lock that was read, and removed. `release()` removes the file only
 * while it is still this process's. Admin commands never take the lock: they
 * work beside a running server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, UnavailableError } from '../protocol/errors.js';

export const LOCK_FILE = 'serve.lock';

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/PID/stat field 22); undefined where /proc is absent. */
  startTime?: number;
}

/** The start time of `pid` from /proc, or undefined when it cannot be read. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime field 22.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const n = Number(rest[19]);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `h` still runs (same PID and, where known, the same start time). */
export function holderAlive(h: LockHolder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (h.startTime === undefined) return true;
  const now = processStartTime(h.pid);
  return now === undefined || now === h.startTime;
}

function parseHolder(text: string): LockHolder | undefined {
  const m = /^pid (\d+)(?:\nstart (\d+))?\n?$/.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), startTime: m[2] !== undefined ? Number(m[2]) : undefined };
}

function formatHolder(h: LockHolder): string {
  return `pid ${h.pid}\n${h.startTime !== undefined ? `start ${h.startTime}\n` : ''}`;
}

function readHolder(file: string): LockHolder | 'absent' | undefined {
  try {
    return parseHolder(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
}

function unusable(root: string, e: unknown): UnavailableError {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS' ? 'is not writable' : 'cannot be used';
  return new UnavailableError(`data dir ${root} ${why}: ${err.code ?? err.message}`, { root });
}

export class DataDirLock {
  readonly file: string;
  private readonly me: LockHolder;
  private held = false;

  constructor(readonly root: string) {
    this.file = path.join(root, LOCK_FILE);
    this.me = { pid: process.pid, startTime: processStartTime(process.pid) };
  }

  /**
   * Takes the lock; returns the PID of a dead holder whose stale lock it took
   * over, if any. ConflictError naming the holder's PID when a live process
   * holds it; UnavailableError when the data dir cannot be written.
   */
  acquire(): { staleFrom?: number } {
    if (this.held) return {};
    let staleFrom: number | undefined;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, formatHolder(this.me), { mode: 0o600 });
    } catch (e) {
      throw unusable(this.root, e);
    }
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          fs.linkSync(tmp, this.file);
          this.held = true;
          return { staleFrom };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(this.root, e);
        }
        const holder = readHolder(this.file);
        if (holder === 'absent') continue;
        if (holder && holderAlive(holder)) {
          throw new ConflictError(`data dir ${this.root} is in use by another kickswarm serve (pid ${holder.pid}); stop it first, or use another --data-dir`, {
            pid: holder.pid,
          });
        }
        staleFrom = holder?.pid;
        this.takeOver(holder);
      }
      throw new UnavailableError(`could not take the lock ${this.file}: other processes keep taking it`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Removes a stale lock (holder gone or unreadable) unless another contender replaced it meanwhile. */
  private takeOver(stale: LockHolder | undefined): void {
    const aside = `${this.file}.${process.pid}.stale`;
    try {
      fs.renameSync(this.file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw unusable(this.root, e);
    }
    const moved = readHolder(aside);
    const same = moved !== 'absent' && (moved === undefined ? stale === undefined : stale !== undefined && moved.pid === stale.pid && moved.startTime === stale.startTime);
    if (!same) {
      // A live contender's fresh lock was moved: put it back (if a third took the place, that one wins).
      try {
        fs.linkSync(aside, this.file);
      } catch {
        /* the place is taken again; the next attempt reads whoever holds it */
      }
    }
    fs.rmSync(aside, { force: true });
  }

  /** Removes the lock if this process still holds it. Idempotent. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const h = readHolder(this.file);
    if (h !== 'absent' && h?.pid === this.me.pid && h.startTime === this.me.startTime) fs.rmSync(this.file, { force: true });
  }
}
