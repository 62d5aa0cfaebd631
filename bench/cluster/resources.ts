/**
 * Everything a benchmark run made that must not outlive it: process groups,
 * network namespaces, the work folder. `releaseSync()` removes all of it
 * synchronously, so it also works from a signal handler, an uncaught error or
 * the process's `exit` event; it is idempotent and never throws.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deleteNamespaces, PREFIX_RE } from './netns.js';

export class Resources {
  readonly prefix = `ksb-${process.pid}-`;
  private readonly groups = new Set<number>();
  private readonly namespaces = new Set<string>();
  private readonly dirs = new Set<string>();
  /** Keep the work folder (logs, data dir, targets) for inspection. */
  keepDirs = false;

  addGroup(pid: number): void {
    if (pid > 0) this.groups.add(pid);
  }

  dropGroup(pid: number): void {
    this.groups.delete(pid);
  }

  addNamespace(ns: string): void {
    this.namespaces.add(ns);
  }

  dropNamespaces(names: string[]): void {
    for (const n of names) this.namespaces.delete(n);
  }

  /** A fresh work folder under the system temp dir, named with the run's prefix. */
  makeWorkDir(): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), this.prefix));
    this.dirs.add(d);
    return d;
  }

  dropDir(d: string): void {
    this.dirs.delete(d);
  }

  /** SIGKILLs every process group, deletes every namespace and (unless kept) every folder. */
  releaseSync(): { namespacesLeft: string[] } {
    for (const pid of this.groups) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.groups.clear();
    const left = this.namespaces.size ? deleteNamespaces([...this.namespaces]) : [];
    this.namespaces.clear();
    if (!this.keepDirs) for (const d of this.dirs) fs.rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
    return { namespacesLeft: left };
  }
}

/** Removes work folders of earlier runs (`ksb-<pid>-*` in the temp dir) whose process is gone. */
export function cleanLeftoverDirs(): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = PREFIX_RE.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPERM') continue;
    }
    fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Makes SIGINT, SIGTERM, SIGHUP, uncaught errors and unhandled rejections
 * release `r` before the process ends (exit status 130/143/129, or 1 for
 * errors); the `exit` event releases too. Returns a function that removes
 * the handlers.
 */
export function releaseOnExit(r: Resources, say: (line: string) => void): () => void {
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  const onSignal = (sig: NodeJS.Signals) => {
    say(`bench:cluster: ${sig}: removing namespaces and processes`);
    r.releaseSync();
    process.exit(codes[sig] ?? 1);
  };
  const onError = (e: unknown) => {
    say(`bench:cluster: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    r.releaseSync();
    process.exit(1);
  };
  const onExit = () => r.releaseSync();
  for (const s of Object.keys(codes)) process.on(s, onSignal);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  process.on('exit', onExit);
  return () => {
    for (const s of Object.keys(codes)) process.off(s, onSignal);
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    process.off('exit', onExit);
  };
}
