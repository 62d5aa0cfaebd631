/** Temporary folders: removed after the test file (tmpDir), or by the caller (tempDir). */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

export function tmpDir(prefix = 'kickswarm-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export function cleanupTmpDirs(): void {
  while (made.length) fs.rmSync(made.pop()!, { recursive: true, force: true });
}

/** A temporary folder the caller removes with `cleanup()`. */
export async function tempDir(prefix = 'kickswarm-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
