/**
 * Writes the profile's secrets (fetched once from secrets.cgi with the install
 * session token) into the installed root, so that password hashes and keys
 * never have to sit in a kickstart. Each file is created with its mode before
 * any byte is written and replaces what the image had at that path; missing
 * parent folders are made (0755). A path that would leave the root through a
 * symlink in the image is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '../../protocol/errors.js';
import { isSecretPath, type SecretFile } from '../../protocol/session.js';
import type { Logger } from '../log.js';

export function writeSecrets(root: string, files: SecretFile[], log: Logger): void {
  const realRoot = fs.realpathSync(root);
  for (const f of files) {
    if (!isSecretPath(f.path)) throw new InvalidInputError(`secret path ${JSON.stringify(f.path)} is not an absolute path inside the root`);
    const dest = path.join(realRoot, f.path);
    const dir = path.dirname(dest);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const realDir = fs.realpathSync(dir);
    if (realDir !== realRoot && !realDir.startsWith(realRoot + path.sep)) {
      throw new InvalidInputError(`secret ${f.path}: its folder leads outside the installed root (a symlink in the image)`);
    }
    const mode = parseInt(f.mode, 8);
    const target = path.join(realDir, path.basename(dest));
    const tmp = `${target}.kickswarm-${process.pid}`;
    fs.writeFileSync(tmp, f.content, { mode, flag: 'wx' });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, target);
    log.info({ path: f.path, mode: f.mode, bytes: Buffer.byteLength(f.content) }, 'wrote secret file into the installed root');
  }
}
