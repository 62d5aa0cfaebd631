/**
 * The byte layout of a kickswarm chunked image (`.ksimg`), version 1. The full
 * specification is docs/image-format.md; every integer is little-endian.
 *
 *   [header 128 B][index: storedChunks x 56 B][zero padding][chunk data]
 *
 * Only stored chunks (not all-zero) appear in the index, in increasing chunk
 * number, and their data follows in the same order with no gaps, so header and
 * index are readable first and chunk i's bytes are a plain byte range.
 * Everything here is pure and bounds-checked: hostile input is rejected with
 * CorruptImageError (naming the chunk when one is at fault) before anything is
 * allocated in proportion to a number read from the input.
 */
import crypto from 'node:crypto';
import { CorruptImageError, InvalidInputError } from './errors.js';

export const IMAGE_MAGIC = Buffer.from('KSWIMG1\0', 'latin1');
export const IMAGE_VERSION = 1;
export const HEADER_SIZE = 128;
export const INDEX_ENTRY_SIZE = 56;
export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Largest index accepted (about 4.8 million stored chunks): bounds what a reader buffers. */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

/** Chunk codecs: stored as is, or raw deflate (RFC 1951, no zlib/gzip wrapper). */
export const CODEC_STORED = 0;
export const CODEC_DEFLATE = 1;
export type Codec = typeof CODEC_STORED | typeof CODEC_DEFLATE;

export interface ImageHeader {
  version: number;
  chunkSize: number;
  rawSize: number;
  chunkCount: number;
  storedChunks: number;
  /** Byte offset of the first chunk's data; header + index + zero padding precede it. */
  dataOffset: number;
  /** Sum of all stored lengths; the file is exactly dataOffset + dataLength bytes. */
  dataLength: number;
  /** SHA-256 (hex) of the whole raw image, zeros included. */
  sha256: string;
  /** SHA-256 (hex) of the index bytes (storedChunks x 56). */
  indexSha256: string;
}

export interface IndexEntry {
  /** Disk offset / chunk size. */
  chunkNumber: number;
  codec: Codec;
  /** Offset of the chunk's stored bytes in the image file. */
  offset: number;
  storedLength: number;
  rawLength: number;
  /** SHA-256 of the raw (decoded) bytes, 32 bytes. */
  sha256: Buffer;
}

/** A verified chunk, ready to be written at `diskOffset`. */
export interface ImageChunk {
  chunkNumber: number;
  diskOffset: number;
  data: Buffer;
}

export interface EncodedChunk {
  codec: Codec;
  /** The bytes that go into the image file. */
  stored: Buffer;
  /** SHA-256 of the raw bytes. */
  sha256: Buffer;
}

const sha256 = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();

/** Throws InvalidInputError unless `n` is a power of two in 64 KiB..16 MiB. */
export function checkChunkSize(n: number): number {
  if (!Number.isInteger(n) || n < MIN_CHUNK_SIZE || n > MAX_CHUNK_SIZE || (n & (n - 1)) !== 0) {
    throw new InvalidInputError(`chunk size ${n} must be a power of two from 64 KiB to 16 MiB`);
  }
  return n;
}

/** Raw length of chunk `n`: the chunk size, except for a shorter final chunk. */
export function expectedRawLength(h: Pick<ImageHeader, 'chunkSize' | 'rawSize'>, n: number): number {
  return Math.min(h.chunkSize, h.rawSize - n * h.chunkSize);
}

/** Byte range [start, end) of the index in the image file. */
export function indexRange(h: ImageHeader): { start: number; end: number } {
  return { start: HEADER_SIZE, end: HEADER_SIZE + h.storedChunks * INDEX_ENTRY_SIZE };
}

/** Byte range [start, end) of one chunk's stored bytes in the image file. */
export function chunkRange(e: IndexEntry): { start: number; end: number } {
  return { start: e.offset, end: e.offset + e.storedLength };
}

export function isAllZero(buf: Buffer): boolean {
  const zeros = zeroBuffer(Math.min(buf.length, MAX_CHUNK_SIZE));
  for (let off = 0; off < buf.length; off += zeros.length) {
    const end = Math.min(buf.length, off + zeros.length);
    if (!buf.subarray(off, end).equals(zeros.subarray(0, end - off))) return false;
  }
  return true;
}

let zeroCache = Buffer.alloc(0);
/** A shared, read-only buffer of `n` zero bytes (n <= 16 MiB). Never write into it. */
export function zeroBuffer(n: number): Buffer {
  if (zeroCache.length < n) zeroCache = Buffer.alloc(Math.max(n, DEFAULT_CHUNK_SIZE));
  return zeroCache.subarray(0, n);
}

export function isImageMagic(buf: Buffer): boolean {
  return buf.length >= IMAGE_MAGIC.length && buf.subarray(0, IMAGE_MAGIC.length).equals(IMAGE_MAGIC);
}

export function encodeHeader(h: ImageHeader): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  IMAGE_MAGIC.copy(b, 0);
  b.writeUInt16LE(h.version, 8);
  b.writeUInt16LE(HEADER_SIZE, 10);
  b.writeUInt16LE(INDEX_ENTRY_SIZE, 12);
  b.writeUInt32LE(h.chunkSize, 16);
  b.writeUInt32LE(h.chunkCount, 20);
  b.writeUInt32LE(h.storedChunks, 24);
  b.writeBigUInt64LE(BigInt(h.rawSize), 32);
  b.writeBigUInt64LE(BigInt(h.dataOffset), 40);
  b.writeBigUInt64LE(BigInt(h.dataLength), 48);
  Buffer.from(h.sha256, 'hex').copy(b, 56);
  Buffer.from(h.indexSha256, 'hex').copy(b, 88);
  sha256(b.subarray(0, 120)).copy(b, 120, 0, 8);
  return b;
}

function u64(b: Buffer, off: number, what: string): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${what} ${v} is absurd`);
  return Number(v);
}

/** Parses and validates the fixed 128-byte header at the start of `buf`. */
export function parseHeader(buf: Buffer): ImageHeader {
  if (buf.length < HEADER_SIZE) throw new CorruptImageError(`truncated header (${buf.length} of ${HEADER_SIZE} bytes)`);
  if (!isImageMagic(buf)) throw new CorruptImageError('not a kickswarm image (bad magic)');
  if (!sha256(buf.subarray(0, 120)).subarray(0, 8).equals(buf.subarray(120, 128))) {
    throw new CorruptImageError('header checksum mismatch');
  }
  const version = buf.readUInt16LE(8);
  if (version !== IMAGE_VERSION) throw new CorruptImageError(`unsupported image format version ${version}`);
  if (buf.readUInt16LE(10) !== HEADER_SIZE || buf.readUInt16LE(12) !== INDEX_ENTRY_SIZE) {
    throw new CorruptImageError('unexpected header or index entry length');
  }
  const chunkSize = buf.readUInt32LE(16);
  try {
    checkChunkSize(chunkSize);
  } catch {
    throw new CorruptImageError(`bad chunk size ${chunkSize}`);
  }
  const h: ImageHeader = {
    version,
    chunkSize,
    chunkCount: buf.readUInt32LE(20),
    storedChunks: buf.readUInt32LE(24),
    rawSize: u64(buf, 32, 'raw size'),
    dataOffset: u64(buf, 40, 'data offset'),
    dataLength: u64(buf, 48, 'data length'),
    sha256: buf.toString('hex', 56, 88),
    indexSha256: buf.toString('hex', 88, 120),
  };
  if (h.chunkCount !== Math.ceil(h.rawSize / chunkSize)) {
    throw new CorruptImageError(`chunk count ${h.chunkCount} does not match raw size ${h.rawSize}`);
  }
  if (h.storedChunks > h.chunkCount) throw new CorruptImageError(`stored chunk count ${h.storedChunks} exceeds chunk count ${h.chunkCount}`);
  const indexEnd = HEADER_SIZE + h.storedChunks * INDEX_ENTRY_SIZE;
  if (indexEnd - HEADER_SIZE > MAX_INDEX_BYTES) throw new CorruptImageError(`index of ${h.storedChunks} entries is too large`);
  if (h.dataOffset < indexEnd || h.dataOffset > HEADER_SIZE + h.chunkCount * INDEX_ENTRY_SIZE) {
    throw new CorruptImageError(`data offset ${h.dataOffset} out of range`);
  }
  if (h.dataLength > h.storedChunks * chunkSize || h.dataLength < h.storedChunks) {
    throw new CorruptImageError(`data length ${h.dataLength} impossible for ${h.storedChunks} stored chunks`);
  }
  return h;
}

export function encodeIndexEntry(e: IndexEntry, into = Buffer.alloc(INDEX_ENTRY_SIZE), at = 0): Buffer {
  into.writeUInt32LE(e.chunkNumber, at);
  into.writeUInt8(e.codec, at + 4);
  into.fill(0, at + 5, at + 8);
  into.writeBigUInt64LE(BigInt(e.offset), at + 8);
  into.writeUInt32LE(e.storedLength, at + 16);
  into.writeUInt32LE(e.rawLength, at + 20);
  e.sha256.copy(into, at + 24, 0, 32);
  return into;
}

/** Decodes one 56-byte entry; only field ranges are checked here (see IndexChecker for the rest). */
export function decodeIndexEntry(buf: Buffer, at = 0): IndexEntry {
  if (buf.length < at + INDEX_ENTRY_SIZE) throw new CorruptImageError('truncated index entry');
  const chunkNumber = buf.readUInt32LE(at);
  const codec = buf.readUInt8(at + 4);
  if (codec !== CODEC_STORED && codec !== CODEC_DEFLATE) throw new CorruptImageError(`unknown codec ${codec}`, chunkNumber);
  const off = buf.readBigUInt64LE(at + 8);
  if (off > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`absurd data offset ${off}`, chunkNumber);
  return {
    chunkNumber,
    codec,
    offset: Number(off),
    storedLength: buf.readUInt32LE(at + 16),
    rawLength: buf.readUInt32LE(at + 20),
    sha256: Buffer.from(buf.subarray(at + 24, at + 56)),
  };
}

/**
 * Validates index entries in file order: chunk numbers strictly increasing and
 * in range, raw length as the header implies, stored length plausible for the
 * codec, data contiguous from `dataOffset`, and `finish()` checks the total.
 */
export class IndexChecker {
  private prev = -1;
  private next: number;
  private seen = 0;
  constructor(private readonly h: ImageHeader) {
    this.next = h.dataOffset;
  }
  check(e: IndexEntry): IndexEntry {
    const n = e.chunkNumber;
    if (this.seen >= this.h.storedChunks) throw new CorruptImageError('more index entries than stored chunks', n);
    if (n <= this.prev || n >= this.h.chunkCount) throw new CorruptImageError(`chunk number out of order or range (previous ${this.prev}, count ${this.h.chunkCount})`, n);
    if (e.rawLength !== expectedRawLength(this.h, n)) throw new CorruptImageError(`raw length ${e.rawLength} is wrong`, n);
    const lenOk = e.codec === CODEC_STORED ? e.storedLength === e.rawLength : e.storedLength >= 1 && e.storedLength < e.rawLength;
    if (!lenOk) throw new CorruptImageError(`stored length ${e.storedLength} impossible for codec ${e.codec}`, n);
    if (e.offset !== this.next) throw new CorruptImageError(`data offset ${e.offset} should be ${this.next}`, n);
    if (e.offset + e.storedLength > this.h.dataOffset + this.h.dataLength) throw new CorruptImageError('data extends past the declared data length', n);
    this.prev = n;
    this.next = e.offset + e.storedLength;
    this.seen++;
    return e;
  }
  finish(): void {
    if (this.seen !== this.h.storedChunks) throw new CorruptImageError(`index has ${this.seen} entries, header says ${this.h.storedChunks}`);
    if (this.next !== this.h.dataOffset + this.h.dataLength) throw new CorruptImageError('index does not cover the declared data length');
  }
}

/**
 * Parses header and index from a buffer holding at least the first
 * `dataOffset` bytes (or header + index) of an image; verifies the header
 * checksum, the index SHA-256 and every entry.
 */
export function parseHeaderAndIndex(buf: Buffer): { header: ImageHeader; entries: IndexEntry[] } {
  const header = parseHeader(buf);
  const { start, end } = indexRange(header);
  if (buf.length < end) throw new CorruptImageError(`need ${end} bytes for header and index, have ${buf.length}`);
  const index = buf.subarray(start, end);
  if (sha256(index).toString('hex') !== header.indexSha256) throw new CorruptImageError('index checksum mismatch');
  const checker = new IndexChecker(header);
  const entries: IndexEntry[] = [];
  for (let at = 0; at < index.length; at += INDEX_ENTRY_SIZE) entries.push(checker.check(decodeIndexEntry(index, at)));
  checker.finish();
  return { header, entries };
}
