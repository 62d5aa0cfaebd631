/**
 * One chunk's codec: raw deflate, or stored when deflate does not shrink it;
 * decoding verifies stored length, codec, an inflate bound of the raw length
 * (no inflate bombs) and the raw SHA-256.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { CorruptImageError } from './errors.js';
import { inflateInto, inflateIntoSupported } from './inflate-into.js';
import { CODEC_DEFLATE, CODEC_STORED, type EncodedChunk, type IndexEntry } from './image-layout.js';

const sha256 = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();
const deflateRawAsync = promisify(zlib.deflateRaw);
const inflateRawAsync = promisify(zlib.inflateRaw);

/**
 * zlib's output buffer for a chunk of `rawLength` bytes: the whole chunk at
 * once. zlib's 16 KiB default costs one thread-pool round trip and one buffer
 * per 16 KiB, about seven times the CPU of the inflate itself.
 */
const outputSize = (rawLength: number): number => Math.max(zlib.constants.Z_MIN_CHUNK, rawLength);

function pickCodec(raw: Buffer, deflated: Buffer, digest: Buffer): EncodedChunk {
  return deflated.length < raw.length ? { codec: CODEC_DEFLATE, stored: deflated, sha256: digest } : { codec: CODEC_STORED, stored: raw, sha256: digest };
}

/** Encodes one raw chunk: raw deflate, or stored when deflate does not shrink it. */
export function encodeChunk(raw: Buffer, level = 6): EncodedChunk {
  return pickCodec(raw, zlib.deflateRawSync(raw, { level, chunkSize: outputSize(raw.length) }), sha256(raw));
}

/** encodeChunk on the libuv thread pool. */
export async function encodeChunkAsync(raw: Buffer, level = 6): Promise<EncodedChunk> {
  return pickCodec(raw, await deflateRawAsync(raw, { level, chunkSize: outputSize(raw.length) }), sha256(raw));
}

function checkStored(e: IndexEntry, stored: Buffer): void {
  if (stored.length !== e.storedLength) throw new CorruptImageError(`stored length ${stored.length}, index says ${e.storedLength}`, e.chunkNumber);
  if (e.codec !== CODEC_STORED && e.codec !== CODEC_DEFLATE) throw new CorruptImageError(`unknown codec ${e.codec}`, e.chunkNumber);
}

function checkRaw(e: IndexEntry, raw: Buffer): Buffer {
  if (raw.length !== e.rawLength) throw new CorruptImageError(`decodes to ${raw.length} bytes, index says ${e.rawLength}`, e.chunkNumber);
  if (!sha256(raw).equals(e.sha256)) throw new CorruptImageError('SHA-256 mismatch', e.chunkNumber);
  return raw;
}

/** Decodes and verifies one chunk's stored bytes (length, codec, inflate bound, SHA-256). */
export function decodeChunk(e: IndexEntry, stored: Buffer): Buffer {
  checkStored(e, stored);
  if (e.codec === CODEC_STORED) return checkRaw(e, stored);
  let raw: Buffer;
  try {
    raw = zlib.inflateRawSync(stored, { maxOutputLength: Math.max(1, e.rawLength), chunkSize: outputSize(e.rawLength) });
  } catch (err) {
    throw new CorruptImageError(`inflate failed: ${(err as Error).message}`, e.chunkNumber);
  }
  return checkRaw(e, raw);
}

/**
 * decodeChunk on the libuv thread pool. With `out` (at least rawLength + 1
 * bytes, not used by anyone else until this settles) a deflated chunk is
 * inflated into it and the result is a view of `out`; a stored chunk's
 * result is `stored` itself either way.
 */
export async function decodeChunkAsync(e: IndexEntry, stored: Buffer, out?: Buffer): Promise<Buffer> {
  checkStored(e, stored);
  if (e.codec === CODEC_STORED) return checkRaw(e, stored);
  let raw: Buffer;
  try {
    raw =
      out && out.length > e.rawLength && inflateIntoSupported()
        ? await inflateInto(stored, out)
        : await inflateRawAsync(stored, { maxOutputLength: Math.max(1, e.rawLength), chunkSize: outputSize(e.rawLength) });
  } catch (err) {
    throw new CorruptImageError(`inflate failed: ${(err as Error).message}`, e.chunkNumber);
  }
  return checkRaw(e, raw);
}
