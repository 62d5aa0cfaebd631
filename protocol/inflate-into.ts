/**
 * Raw inflate on the libuv thread pool into a buffer of the caller's (Node.js
 * 20's zlib; private members of its streams, pinned by
 * test/unit/inflate-into.test.ts).
 *
 * `zlib.inflateRaw` gives every call a new output buffer and a new native
 * inflate state; a node decodes hundreds of 1 MiB chunks per GiB, and those
 * buffers cost it fresh memory and collections. Here a few InflateRaw streams
 * are reused (reset between chunks) and each writes straight into the
 * caller's buffer.
 *
 * Contract:
 * - `inflateInto(stored, out)` resolves with the raw bytes as a view of
 *   `out` when they fit in `out.length - 1` bytes (the spare byte tells a
 *   chunk that fills `out` exactly from one that would go on), and rejects
 *   with the zlib error for bad data and with InflateOverflow when the data
 *   inflates to more: nothing past `out` is kept (an inflate bomb costs at
 *   most one buffer of `out.length`);
 * - `out` must not be used by anyone else until the promise settles;
 * - where this Node.js lacks the members used, `inflateIntoSupported()` is
 *   false and callers use `zlib.inflateRaw`.
 */
import zlib from 'node:zlib';

/** The raw bytes do not fit the caller's buffer. */
export class InflateOverflow extends Error {
  constructor(limit: number) {
    super(`inflates to more than ${limit} bytes`);
  }
}

/** The members of Node.js's zlib streams used here. */
interface Inflater extends zlib.InflateRaw {
  _processChunk(chunk: Buffer, flushFlag: number, cb: () => void): void;
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

const MAX_IDLE = 8;
const idle: Inflater[] = [];

function make(): Inflater {
  return zlib.createInflateRaw() as Inflater;
}

let supported: boolean | undefined;

/** True where this Node.js's zlib streams have what inflateInto uses (checked once, on first use). */
export function inflateIntoSupported(): boolean {
  if (supported === undefined) {
    const s = make() as Partial<Inflater>;
    supported = typeof s._processChunk === 'function' && Buffer.isBuffer(s._outBuffer) && typeof s._outOffset === 'number' && typeof s._chunkSize === 'number';
    (s as zlib.InflateRaw).close();
  }
  return supported;
}

/** Inflates raw-deflate `stored` into `out` (see the module doc). */
export function inflateInto(stored: Buffer, out: Buffer): Promise<Buffer> {
  const limit = out.length - 1;
  const inf = idle.pop() ?? make();
  inf.reset();
  inf._outBuffer = out;
  inf._outOffset = 0;
  inf._chunkSize = out.length;
  return new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    let failed: Error | undefined;
    const onData = (d: Buffer) => {
      total += d.length;
      if (total > limit && !failed) {
        failed = new InflateOverflow(limit);
        inf.destroy();
      } else if (!failed) parts.push(d);
    };
    const settle = (err?: Error) => {
      inf.off('data', onData);
      inf.off('error', settle);
      inf._outBuffer = Buffer.alloc(0);
      err ??= failed;
      if (err) return reject(err);
      // Output the stream kept back (it hands it on at once when flowing; this is the fallback).
      for (let rest: Buffer | null; inf.readableLength > 0 && (rest = inf.read() as Buffer | null) !== null;) onData(rest);
      if (failed) return reject(failed);
      if (idle.length < MAX_IDLE) idle.push(inf);
      else inf.close();
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, total));
    };
    inf.on('data', onData);
    inf.once('error', settle);
    inf._processChunk(stored, zlib.constants.Z_FINISH, () => settle());
  });
}
