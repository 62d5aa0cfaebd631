/**
 * Pass 2 of a capture: the upload body. Yields the header and index pass 1
 * planned, then re-reads every stored chunk, checks it is still what pass 1
 * saw (raw SHA-256), compresses it again with the same codec and level, and
 * checks the result has the stored length the index announced, before its
 * bytes go out. All-zero chunks are not read again: they are absent from the
 * image, so it is exactly the disk as pass 1 read it, or the capture aborts.
 *
 * Memory: `concurrency` chunks in flight; nothing is written to local disk.
 */
import crypto from 'node:crypto';
import { KickswarmError } from '../../protocol/errors.js';
import { CODEC_STORED, decodeIndexEntry, encodeChunkAsync, encodeHeader, INDEX_ENTRY_SIZE, type IndexEntry } from '../../protocol/image-format.js';
import { inOrder, type CapturePlan } from './scan.js';
import { SourceChangedError, type CaptureSource } from './source.js';

export interface BodyProgress {
  /** Bytes of the body produced so far (header and index included). */
  sent: number;
  /** Raw bytes of the source covered (stored chunks re-read, zero chunks skipped). */
  rawDone: number;
}

export interface BodyOptions {
  concurrency: number;
  signal?: AbortSignal;
  onProgress?: (p: BodyProgress) => void;
}

const sha256 = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();

function changed(src: CaptureSource, e: IndexEntry, chunkSize: number): SourceChangedError {
  const start = e.chunkNumber * chunkSize;
  return new SourceChangedError(
    `${src.path} changed between the two capture passes (chunk ${e.chunkNumber}, bytes ${start}..${start + e.rawLength}); ` + 'capture a disk that is not mounted or in use, and try again',
  );
}

/** The stored bytes of one index entry, re-read from `src` and checked against the plan. */
async function storedBytes(src: CaptureSource, plan: CapturePlan, e: IndexEntry): Promise<Buffer> {
  const { chunkSize } = plan.header;
  const raw = await src.read(e.chunkNumber * chunkSize, e.rawLength);
  if (e.codec === CODEC_STORED) {
    if (!sha256(raw).equals(e.sha256)) throw changed(src, e, chunkSize);
    return raw;
  }
  const enc = await encodeChunkAsync(raw, plan.level);
  if (!enc.sha256.equals(e.sha256)) throw changed(src, e, chunkSize);
  if (enc.codec !== e.codec || enc.stored.length !== e.storedLength) {
    throw new KickswarmError(
      'internal',
      `chunk ${e.chunkNumber} compressed to ${enc.stored.length} bytes in pass 2 but ${e.storedLength} in pass 1 from the same data; ` +
        'deflate is not deterministic on this machine, capture aborted',
    );
  }
  return enc.stored;
}

/**
 * Pass 2: the body of the capture upload, `plan.uploadSize` bytes. Throws
 * SourceChangedError (the source's size or a stored chunk's content is not
 * what pass 1 read) before yielding any byte of a chunk that differs.
 */
export async function* imageBody(src: CaptureSource, plan: CapturePlan, o: BodyOptions): AsyncGenerator<Buffer> {
  await src.checkSize();
  const p: BodyProgress = { sent: 0, rawDone: 0 };
  const emit = (b: Buffer, rawEnd: number): Buffer => {
    p.sent += b.length;
    p.rawDone = rawEnd;
    o.onProgress?.({ ...p });
    return b;
  };
  yield emit(encodeHeader(plan.header), 0);
  yield emit(Buffer.from(plan.index), 0);
  const entry = (i: number): IndexEntry => decodeIndexEntry(plan.index, i * INDEX_ENTRY_SIZE);
  let i = 0;
  for await (const stored of inOrder(plan.header.storedChunks, o.concurrency, (k) => storedBytes(src, plan, entry(k)), o.signal)) {
    const e = entry(i++);
    yield emit(stored, e.chunkNumber * plan.header.chunkSize + e.rawLength);
  }
  o.signal?.throwIfAborted();
  if (p.sent !== plan.uploadSize) throw new KickswarmError('internal', `capture body is ${p.sent} bytes, the plan said ${plan.uploadSize}`);
  emit(Buffer.alloc(0), plan.header.rawSize);
}
