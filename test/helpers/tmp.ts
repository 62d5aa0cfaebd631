/** Temporary folders that are removed after the test file. */
import fs from 'node:fs';
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
