import fs from 'node:fs';
import path from 'node:path';

/** True when the file system of `dir` takes O_DIRECT opens (tmpfs before Linux 6.6 does not). */
export function directSupported(dir: string): boolean {
  const probe = path.join(dir, 'probe');
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}
