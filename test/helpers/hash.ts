/** The one SHA-256 the tests compare bytes, files and written targets with. */
import crypto from 'node:crypto';
import fs from 'node:fs';

export { sha256Prefix } from '../../bench/cluster/image.js';

/** Hex SHA-256 of bytes, or of a whole file when given its path. */
export function sha256(data: Uint8Array | string): string {
  return crypto
    .createHash('sha256')
    .update(typeof data === 'string' ? fs.readFileSync(data) : data)
    .digest('hex');
}
