/**
 * The multicast (frisbee) datagram layout, version 1. docs/multicast.md is the
 * specification; every integer is little-endian. Every datagram starts with
 *
 *   0 magic "KSFB"  4 version u8  5 type u8  6 reserved u16
 *   8 imageId u32 (first 4 bytes of the raw image SHA-256)  12 sessionId u32
 *
 * DATA     16 seq u32, 20 chunk u32, 24 block u32, 28 blockCount u32,
 *          32 storedLength u32, 36 blockSize u16, 38 reserved u16, 40 payload
 * REQUEST  16 receiverId u32, 20 itemCount u16, 22 flags u16 (bit 0: lastSeq
 *          is valid), 24 lastSeq u32 (newest DATA seq the receiver has
 *          processed), then items: chunk u32, bitmapLength u16, bitmap (bit
 *          i = block i wanted, least significant bit first; length 0 = the
 *          whole chunk)
 * JOIN, LEAVE  16 receiverId u32
 * REPORT   16 receiverId u32, 20 received u32, 24 lost u32 (since the last report)
 *
 * Decoding never throws: a datagram that is truncated, foreign, for another
 * image or session, or whose numbers are absurd comes back as
 * `{ ok: false, reason }`, and nothing is allocated in proportion to a number
 * read from it.
 */
import { InvalidInputError } from './errors.js';
import { MAX_CHUNK_SIZE } from './image-layout.js';

export const FRISBEE_MAGIC = Buffer.from('KSFB', 'latin1');
export const FRISBEE_VERSION = 1;
export const COMMON_HEADER_SIZE = 16;
export const DATA_HEADER_SIZE = 40;
export const REQUEST_HEADER_SIZE = 28;
export const REQUEST_ITEM_HEADER_SIZE = 6;
/** DATA payload bytes: 1400 + 40 + UDP 8 + IPv4 20 = 1468, inside a 1500-byte MTU. */
export const DEFAULT_BLOCK_SIZE = 1400;
export const MIN_BLOCK_SIZE = 256;
export const MAX_BLOCK_SIZE = 65_000;
/** Most blocks one chunk can have (a 16 MiB stored chunk in 256-byte blocks). */
export const MAX_BLOCKS_PER_CHUNK = Math.ceil(MAX_CHUNK_SIZE / MIN_BLOCK_SIZE);
export const MAX_BITMAP_BYTES = Math.ceil(MAX_BLOCKS_PER_CHUNK / 8);
export const MAX_REQUEST_ITEMS = 1024;
/** Largest REQUEST datagram a receiver sends (fits a 1500-byte MTU). */
export const DEFAULT_MAX_REQUEST_BYTES = 1472;

export const PacketType = { DATA: 1, REQUEST: 2, JOIN: 3, LEAVE: 4, REPORT: 5 } as const;

/** Identifies image and session in every datagram. */
export interface PacketIds {
  imageId: number;
  sessionId: number;
}

export interface DataPacket extends PacketIds {
  type: 'data';
  /** Per-session datagram sequence number (receivers count gaps as loss). */
  seq: number;
  chunk: number;
  block: number;
  blockCount: number;
  /** Stored (compressed) length of the whole chunk. */
  storedLength: number;
  blockSize: number;
  /** Bytes [block * blockSize, ...) of the chunk's stored bytes; a view into the datagram. */
  payload: Buffer;
}

/** One chunk a receiver lacks: all of it, or the blocks set in `blocks`. */
export interface RequestItem {
  chunk: number;
  blocks?: Buffer;
}

export interface RequestPacket extends PacketIds {
  type: 'request';
  receiverId: number;
  /**
   * Newest DATA sequence number the receiver had processed when it asked;
   * blocks sent after it may still be on their way to it. Absent before its
   * first DATA.
   */
  lastSeq?: number;
  items: RequestItem[];
}

export interface MemberPacket extends PacketIds {
  type: 'join' | 'leave';
  receiverId: number;
}

export interface ReportPacket extends PacketIds {
  type: 'report';
  receiverId: number;
  received: number;
  lost: number;
}

export type FrisbeePacket = DataPacket | RequestPacket | MemberPacket | ReportPacket;

/** Why a datagram was dropped (docs/multicast.md). */
export type DropReason = 'truncated' | 'bad_magic' | 'bad_version' | 'unknown_type' | 'wrong_image' | 'wrong_session' | 'bad_length' | 'bad_block' | 'bad_chunk' | 'bad_request';

export type Decoded = { ok: true; packet: FrisbeePacket } | { ok: false; reason: DropReason };

/** What the decoder checks beyond the layout; omitted fields are not checked. */
export interface DecodeExpect {
  imageId?: number;
  sessionId?: number;
  /** Chunk numbers must be below this. */
  chunkCount?: number;
}

/** Counts dropped datagrams by reason. */
export class DropCounter {
  total = 0;
  readonly byReason: Partial<Record<DropReason | string, number>> = {};
  count(reason: DropReason | string): void {
    this.total++;
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
  }
  snapshot(): { total: number; byReason: Record<string, number> } {
    return { total: this.total, byReason: { ...(this.byReason as Record<string, number>) } };
  }
}

/** The image id carried in every datagram: the first 4 bytes of the raw SHA-256 (hex), big-endian. */
export function imageIdFromSha256(sha256Hex: string): number {
  if (!/^[0-9a-f]{8}/i.test(sha256Hex)) throw new InvalidInputError('image SHA-256 must be hex');
  return Number.parseInt(sha256Hex.slice(0, 8), 16) >>> 0;
}

/** True when sequence number `a` comes after `b` (modulo 2^32, within half the space). */
export function seqAfter(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x80000000;
}

/** Number of blocks a chunk of `storedLength` bytes is cut into. */
export function blockCountFor(storedLength: number, blockSize: number): number {
  return Math.ceil(storedLength / blockSize);
}

/** DATA payload size that fits a link MTU (IPv4, no options). */
export function blockSizeForMtu(mtu: number): number {
  return checkBlockSize(mtu - 20 - 8 - DATA_HEADER_SIZE);
}

/** Throws InvalidInputError unless `n` is an integer in MIN_BLOCK_SIZE..MAX_BLOCK_SIZE. */
export function checkBlockSize(n: number): number {
  if (!Number.isInteger(n) || n < MIN_BLOCK_SIZE || n > MAX_BLOCK_SIZE) {
    throw new InvalidInputError(`block size ${n} must be an integer from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE}`);
  }
  return n;
}

/** A bitmap with room for `blocks` bits, all clear. */
export function newBitmap(blocks: number): Buffer {
  return Buffer.alloc(Math.ceil(blocks / 8));
}

export function testBit(map: Buffer, i: number): boolean {
  return (map[i >> 3]! & (1 << (i & 7))) !== 0;
}

export function setBit(map: Buffer, i: number): void {
  map[i >> 3] = map[i >> 3]! | (1 << (i & 7));
}

function writeCommon(b: Buffer, type: number, ids: PacketIds): void {
  FRISBEE_MAGIC.copy(b, 0);
  b.writeUInt8(FRISBEE_VERSION, 4);
  b.writeUInt8(type, 5);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(ids.imageId >>> 0, 8);
  b.writeUInt32LE(ids.sessionId >>> 0, 12);
}

/** One DATA datagram; throws InvalidInputError when the fields do not describe a valid block. */
export function encodeData(p: Omit<DataPacket, 'type'>): Buffer {
  checkBlockSize(p.blockSize);
  const count = blockCountFor(p.storedLength, p.blockSize);
  const want = p.block === count - 1 ? p.storedLength - p.block * p.blockSize : p.blockSize;
  if (p.storedLength < 1 || p.storedLength > MAX_CHUNK_SIZE || p.blockCount !== count || p.block >= count || p.payload.length !== want) {
    throw new InvalidInputError(`DATA chunk ${p.chunk} block ${p.block}: inconsistent block fields`);
  }
  const b = Buffer.allocUnsafe(DATA_HEADER_SIZE + p.payload.length);
  writeCommon(b, PacketType.DATA, p);
  b.writeUInt32LE(p.seq >>> 0, 16);
  b.writeUInt32LE(p.chunk, 20);
  b.writeUInt32LE(p.block, 24);
  b.writeUInt32LE(p.blockCount, 28);
  b.writeUInt32LE(p.storedLength, 32);
  b.writeUInt16LE(p.blockSize, 36);
  b.writeUInt16LE(0, 38);
  p.payload.copy(b, DATA_HEADER_SIZE);
  return b;
}

function itemSize(i: RequestItem): number {
  return REQUEST_ITEM_HEADER_SIZE + (i.blocks?.length ?? 0);
}

/** One REQUEST datagram carrying every item (throws InvalidInputError past MAX_REQUEST_ITEMS or 64 KiB). */
export function encodeRequest(ids: PacketIds, receiverId: number, items: RequestItem[], lastSeq?: number): Buffer {
  if (items.length < 1 || items.length > MAX_REQUEST_ITEMS) throw new InvalidInputError(`a REQUEST carries 1 to ${MAX_REQUEST_ITEMS} items`);
  const size = items.reduce((n, i) => n + itemSize(i), REQUEST_HEADER_SIZE);
  if (size > 65_507) throw new InvalidInputError('REQUEST too large for one datagram');
  const b = Buffer.alloc(size);
  writeCommon(b, PacketType.REQUEST, ids);
  b.writeUInt32LE(receiverId >>> 0, 16);
  b.writeUInt16LE(items.length, 20);
  b.writeUInt16LE(lastSeq === undefined ? 0 : 1, 22);
  b.writeUInt32LE((lastSeq ?? 0) >>> 0, 24);
  let at = REQUEST_HEADER_SIZE;
  for (const i of items) {
    const len = i.blocks?.length ?? 0;
    if (len > MAX_BITMAP_BYTES) throw new InvalidInputError(`bitmap of ${len} bytes is too long`);
    b.writeUInt32LE(i.chunk, at);
    b.writeUInt16LE(len, at + 4);
    i.blocks?.copy(b, at + REQUEST_ITEM_HEADER_SIZE);
    at += itemSize(i);
  }
  return b;
}

/** Packs items into as few REQUEST datagrams of at most `maxBytes` as the order allows. */
export function packRequests(ids: PacketIds, receiverId: number, items: RequestItem[], lastSeq?: number, maxBytes = DEFAULT_MAX_REQUEST_BYTES): Buffer[] {
  const out: Buffer[] = [];
  let batch: RequestItem[] = [];
  let size = REQUEST_HEADER_SIZE;
  for (const i of items) {
    const s = itemSize(i);
    if (batch.length && (size + s > maxBytes || batch.length === MAX_REQUEST_ITEMS)) {
      out.push(encodeRequest(ids, receiverId, batch, lastSeq));
      batch = [];
      size = REQUEST_HEADER_SIZE;
    }
    batch.push(i);
    size += s;
  }
  if (batch.length) out.push(encodeRequest(ids, receiverId, batch, lastSeq));
  return out;
}

export function encodeMember(type: 'join' | 'leave', ids: PacketIds, receiverId: number): Buffer {
  const b = Buffer.alloc(20);
  writeCommon(b, type === 'join' ? PacketType.JOIN : PacketType.LEAVE, ids);
  b.writeUInt32LE(receiverId >>> 0, 16);
  return b;
}

export function encodeReport(ids: PacketIds, receiverId: number, received: number, lost: number): Buffer {
  const b = Buffer.alloc(28);
  writeCommon(b, PacketType.REPORT, ids);
  b.writeUInt32LE(receiverId >>> 0, 16);
  b.writeUInt32LE(Math.min(received, 0xffffffff) >>> 0, 20);
  b.writeUInt32LE(Math.min(lost, 0xffffffff) >>> 0, 24);
  return b;
}

/** The type byte of a datagram that carries our magic and version, else undefined (cheap pre-filter). */
export function peekType(buf: Buffer): number | undefined {
  if (buf.length < COMMON_HEADER_SIZE || buf[4] !== FRISBEE_VERSION) return undefined;
  return buf.subarray(0, 4).equals(FRISBEE_MAGIC) ? buf[5] : undefined;
}

const drop = (reason: DropReason): Decoded => ({ ok: false, reason });

function decodeData(b: Buffer, ids: PacketIds, x: DecodeExpect): Decoded {
  if (b.length < DATA_HEADER_SIZE) return drop('truncated');
  const chunk = b.readUInt32LE(20);
  const block = b.readUInt32LE(24);
  const blockCount = b.readUInt32LE(28);
  const storedLength = b.readUInt32LE(32);
  const blockSize = b.readUInt16LE(36);
  if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) return drop('bad_block');
  if (storedLength < 1 || storedLength > MAX_CHUNK_SIZE) return drop('bad_length');
  if (blockCount !== blockCountFor(storedLength, blockSize) || block >= blockCount) return drop('bad_block');
  if (x.chunkCount !== undefined && chunk >= x.chunkCount) return drop('bad_chunk');
  const want = block === blockCount - 1 ? storedLength - block * blockSize : blockSize;
  if (b.length - DATA_HEADER_SIZE !== want) return drop(b.length - DATA_HEADER_SIZE < want ? 'truncated' : 'bad_length');
  return {
    ok: true,
    packet: { type: 'data', ...ids, seq: b.readUInt32LE(16), chunk, block, blockCount, storedLength, blockSize, payload: b.subarray(DATA_HEADER_SIZE) },
  };
}

function decodeRequest(b: Buffer, ids: PacketIds, x: DecodeExpect): Decoded {
  if (b.length < REQUEST_HEADER_SIZE) return drop('truncated');
  const count = b.readUInt16LE(20);
  if (count < 1 || count > MAX_REQUEST_ITEMS) return drop('bad_request');
  const items: RequestItem[] = [];
  let at = REQUEST_HEADER_SIZE;
  for (let k = 0; k < count; k++) {
    if (at + REQUEST_ITEM_HEADER_SIZE > b.length) return drop('truncated');
    const chunk = b.readUInt32LE(at);
    const len = b.readUInt16LE(at + 4);
    at += REQUEST_ITEM_HEADER_SIZE;
    if (len > MAX_BITMAP_BYTES) return drop('bad_request');
    if (at + len > b.length) return drop('truncated');
    if (x.chunkCount !== undefined && chunk >= x.chunkCount) return drop('bad_chunk');
    items.push(len ? { chunk, blocks: Buffer.from(b.subarray(at, at + len)) } : { chunk });
    at += len;
  }
  if (at !== b.length) return drop('bad_length');
  const lastSeq = (b.readUInt16LE(22) & 1) === 1 ? b.readUInt32LE(24) : undefined;
  return { ok: true, packet: { type: 'request', ...ids, receiverId: b.readUInt32LE(16), ...(lastSeq === undefined ? {} : { lastSeq }), items } };
}

/** Decodes one datagram; never throws. */
export function decodePacket(buf: Buffer, expect: DecodeExpect = {}): Decoded {
  if (buf.length < COMMON_HEADER_SIZE) return drop('truncated');
  if (!buf.subarray(0, 4).equals(FRISBEE_MAGIC)) return drop('bad_magic');
  if (buf[4] !== FRISBEE_VERSION) return drop('bad_version');
  const ids: PacketIds = { imageId: buf.readUInt32LE(8), sessionId: buf.readUInt32LE(12) };
  const type = buf[5];
  if (type === undefined || type < PacketType.DATA || type > PacketType.REPORT) return drop('unknown_type');
  if (expect.imageId !== undefined && ids.imageId !== expect.imageId >>> 0) return drop('wrong_image');
  if (expect.sessionId !== undefined && ids.sessionId !== expect.sessionId >>> 0) return drop('wrong_session');
  switch (type) {
    case PacketType.DATA:
      return decodeData(buf, ids, expect);
    case PacketType.REQUEST:
      return decodeRequest(buf, ids, expect);
    case PacketType.JOIN:
    case PacketType.LEAVE:
      if (buf.length !== 20) return drop(buf.length < 20 ? 'truncated' : 'bad_length');
      return { ok: true, packet: { type: type === PacketType.JOIN ? 'join' : 'leave', ...ids, receiverId: buf.readUInt32LE(16) } };
    default:
      if (buf.length !== 28) return drop(buf.length < 28 ? 'truncated' : 'bad_length');
      return { ok: true, packet: { type: 'report', ...ids, receiverId: buf.readUInt32LE(16), received: buf.readUInt32LE(20), lost: buf.readUInt32LE(24) } };
  }
}

/** What `GET /frisbee/getAddress` tells a receiver (docs/multicast.md has the XML). */
export interface FrisbeeAddress {
  image: string;
  mcAddress: string;
  mcPort: number;
  sessionId: number;
  imageId: number;
  chunkSize: number;
  chunkCount: number;
  storedChunks: number;
  /** Bytes 0..indexEnd-1 of the image file hold its header and index. */
  indexEnd: number;
  blockSize: number;
  /** Current send-rate cap in bytes per second. */
  rateBytesPerSec: number;
  /** Hops the sender's datagrams may cross. */
  ttl: number;
}
