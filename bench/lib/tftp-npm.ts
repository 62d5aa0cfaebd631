/**
 * A read through the npm `tftp` client, for comparison with the PXE-like raw
 * client. The library cannot bind a source address (every transfer comes from
 * 0.0.0.0, i.e. 127.0.0.1 on loopback) and always sends the `timeout` and
 * `windowsize` options; windowsize 1 keeps it lock-step like PXE firmware.
 */
import { createLibClient } from '../../server/tftp/lib.js';
import { TftpGetError, type TftpGetResult } from './tftp-client.js';

export interface NpmGetOptions {
  host: string;
  port: number;
  file: string;
  blksize?: number;
  /** The library's retransmission timeout (sent to the server as the `timeout` option). */
  timeoutMs?: number;
  retries?: number;
  onData?: (payload: Buffer) => void;
}

/** Reads one file with the npm client; rejects with a TftpGetError. */
export function npmTftpGet(o: NpmGetOptions): Promise<TftpGetResult> {
  const client = createLibClient({
    host: o.host,
    port: o.port,
    blockSize: o.blksize ?? 1468,
    windowSize: 1,
    retries: o.retries ?? 5,
    timeout: o.timeoutMs ?? 3000,
  });
  const r: TftpGetResult = { bytes: 0, blocks: 0, blksize: o.blksize ?? 1468, resends: 0, duplicates: 0, longestStallMs: 0 };
  let lastProgress = Date.now();
  return new Promise((resolve, reject) => {
    const fail = (kind: TftpGetError['kind'], e: unknown) => reject(new TftpGetError(`${o.file}: ${(e as Error)?.message ?? String(e)}`, kind, { bytes: r.bytes, blocks: r.blocks, resends: 0 }));
    const stream = client.createGetStream(o.file);
    stream.on('stats', (s: { blockSize: number; size: number | null }) => {
      r.blksize = s.blockSize;
      if (s.size !== null) r.tsize = s.size;
    });
    stream.on('data', (c: Buffer) => {
      const now = Date.now();
      r.longestStallMs = Math.max(r.longestStallMs, now - lastProgress);
      lastProgress = now;
      o.onData?.(c);
      r.bytes += c.length;
    });
    stream.on('error', (e: Error) => fail(/timed out/i.test(e.message) ? 'timeout' : 'server-error', e));
    stream.on('abort', () => fail('protocol', new Error('aborted')));
    stream.on('end', () => resolve({ ...r, blocks: Math.floor(r.bytes / r.blksize) + 1 }));
  });
}
