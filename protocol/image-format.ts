/**
 * The chunked image format shared by the torrent, multicast and HTTP paths
 * (docs/image-format.md is the byte-level specification). A raw disk image is
 * cut into fixed-size chunks, each compressed on its own and verified by its
 * own SHA-256, so any chunk can be written to disk in any order; all-zero
 * chunks are not stored. This module is the public face of the format.
 */
export {
  IMAGE_MAGIC,
  IMAGE_VERSION,
  HEADER_SIZE,
  INDEX_ENTRY_SIZE,
  MIN_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  DEFAULT_CHUNK_SIZE,
  MAX_INDEX_BYTES,
  CODEC_STORED,
  CODEC_DEFLATE,
  checkChunkSize,
  expectedRawLength,
  indexRange,
  chunkRange,
  isAllZero,
  isImageMagic,
  zeroBuffer,
  encodeHeader,
  parseHeader,
  encodeIndexEntry,
  decodeIndexEntry,
  IndexChecker,
  parseHeaderAndIndex,
} from './image-layout.js';
export { encodeChunk, encodeChunkAsync, decodeChunk, decodeChunkAsync } from './image-chunk.js';
export type { Codec, ImageHeader, IndexEntry, ImageChunk, EncodedChunk } from './image-layout.js';
export { openImage, readImage } from './image-reader.js';
export type { ExactByteSource, ImageSource, OpenedImage, ReadImageOptions } from './image-reader.js';
export { writeImage } from './image-writer.js';
export type { WriteImageOptions, WriteProgress, ImageSummary } from './image-writer.js';
export { applyImage, confirmApplied, verifyImage } from './image-apply.js';
export type { ApplyImageOptions, ApplyProgress } from './image-apply.js';
