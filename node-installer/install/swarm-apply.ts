/**
 * The swarm install's direct path: the image's torrent is opened in this
 * process (the localhost proxy's shared session) and every chunk is written
 * as soon as the pieces holding it have verified, copied from the store's pool
 * of recent pieces into a buffer each writer reuses (no cache-file round trip,
 * no loopback HTTP, no new buffer per chunk).
 *
 * Contract:
 * - the header and index come from the frontend (two small Range requests) and
 *   are verified; the torrent must cover every chunk the index names;
 * - the pieces are kept, for seeding, in a scratch region of the target past
 *   the image's raw bytes (aligned to 1 MiB); a block device too small for it
 *   keeps them in the proxy's cache dir instead (and says so); a regular-file
 *   target is cut back to its former size (at least the raw size) when the
 *   session ends;
 * - chunks are written in the order their pieces verify; a driver walks the
 *   pieces in the session's own download order through `ensurePiece`, so the
 *   web seed fallback works exactly as for the HTTP side;
 * - every chunk is verified (SHA-256) before it is written; chunks in `done`
 *   are skipped and new ones added, so a retry resumes;
 * - the session is held for the whole pass: with `--linger 0` nothing is
 *   fetched twice; the linger starts when the pass ends;
 * - at the end the target is fsynced and confirmWritten returns the header's
 *   SHA-256 (every chunk written; `verifyTarget` re-reads the target too).
 * Resolves undefined when the image has no usable torrent (the caller moves it
 * through the proxy's HTTP side, which falls back to plain HTTP).
 */
import fs from 'node:fs';
import type { Dispatcher } from 'undici';
import { CorruptImageError } from '../../protocol/errors.js';
import { HEADER_SIZE, decodeChunkAsync, expectedRawLength, indexRange, type IndexEntry } from '../../protocol/image-format.js';
import { alignedBuffers, openTarget, type TargetFile, type TargetStats } from '../../protocol/target-file.js';
import type { Logger } from '../log.js';
import type { PieceFile } from '../proxy/file-store.js';
import type { SwarmProxy } from '../proxy/proxy.js';
import type { ImageSession } from '../proxy/session.js';
import { confirmWritten, fetchLayout, type ChunkedProgress } from './chunked.js';

const MiB = 1 << 20;
/** Writer backlog (stored bytes) that holds the download, and the one that resumes it: well inside the store's 32 MiB pool. */
const BACKLOG_HIGH = 16 * MiB;
const BACKLOG_LOW = 8 * MiB;

export interface SwarmApplyOptions {
  proxy: SwarmProxy;
  /** Frontend base URL (header and index). */
  frontend: string;
  image: string;
  target: string;
  writeZeros: boolean;
  done: Set<number>;
  /** Re-read the target at the end and hash it (confirmApplied). */
  verifyTarget?: boolean;
  /** Chunks decoded and written at once (default 3). */
  parallel?: number;
  dispatcher?: Dispatcher;
  log: Logger;
  onProgress?: (p: ChunkedProgress) => void;
  /** Header and index bytes fetched from the frontend. */
  onLayout?: (bytes: number) => void;
  /** Called once the target is closed, with how its bytes were written. */
  onTarget?: (s: TargetStats) => void;
}

/** True when `target` can hold `bytes` bytes (a regular file grows; a block device is probed at its last byte). */
async function holds(fh: fs.promises.FileHandle, bytes: number): Promise<boolean> {
  const st = await fh.stat();
  if (st.isFile()) return true;
  const probe = Buffer.alloc(1);
  try {
    return (await fh.read(probe, 0, 1, bytes - 1)).bytesRead === 1;
  } catch {
    return false;
  }
}

/**
 * Bytes `start..end-1` of the torrent's file copied into `into` (the caller's
 * buffer, reused for every chunk it decodes): from the store's pool without a
 * buffer of their own, or read from the store's file straight into it. Piece
 * buffers go back to the session's memory once written, so nothing here keeps
 * a view of one.
 */
async function readStored(s: ImageSession, start: number, end: number, into: Buffer): Promise<Buffer> {
  const pl = s.pieceLength;
  for (let at = start; at < end;) {
    const p = Math.floor(at / pl);
    const upto = Math.min(end, (p + 1) * pl);
    await s.readInto(p, at - p * pl, upto - at, into, at - start);
    at = upto;
  }
  return into.subarray(0, end - start);
}

/** Applies the image as the module doc says; resolves with the target's SHA-256, or undefined without a torrent. */
export async function applyFromSwarm(o: SwarmApplyOptions): Promise<string | undefined> {
  const { header: h, entries } = await fetchLayout(o.frontend, o.image, { dispatcher: o.dispatcher });
  o.onLayout?.(HEADER_SIZE + indexRange(h).end);
  const target = await openTarget(o.target, h.rawSize);
  const fh = target.fh;
  let held: Awaited<ReturnType<SwarmProxy['openImage']>>;
  try {
    const before = (await fh.stat()).size;
    const base = Math.ceil(h.rawSize / MiB) * MiB;
    const pieces: PieceFile = { file: o.target, base, onDestroy: { truncateTo: Math.max(before, h.rawSize) }, direct: true };
    held = await o.proxy.openImage(o.image, async (meta) => {
      if (await holds(fh, base + meta.length)) return pieces;
      o.log.warn({ target: o.target, need: base + meta.length }, 'target too small for a piece region past the image; pieces kept in the cache dir');
      return undefined;
    });
    if (!held) return undefined;
    const s = held.session;
    if (s.meta.length < entries.reduce((m, e) => Math.max(m, e.offset + e.storedLength), 0)) {
      throw new CorruptImageError(`the torrent of ${o.image} (${s.meta.length} bytes) does not cover the image's index`);
    }
    await writeChunks(o, s, target, h.rawSize, h.chunkSize, h.chunkCount, entries, (n) => expectedRawLength(h, n));
    await target.sync();
  } finally {
    held?.release();
    await target.close();
    o.onTarget?.(target.stats);
  }
  return confirmWritten(o.target, h, o.done, o.verifyTarget);
}

async function writeChunks(
  o: SwarmApplyOptions,
  s: ImageSession,
  target: TargetFile,
  rawSize: number,
  chunkSize: number,
  chunkCount: number,
  entries: IndexEntry[],
  rawOf: (n: number) => number,
): Promise<void> {
  const progress: ChunkedProgress = { rawDone: 0, rawSize };
  for (const n of o.done) progress.rawDone += rawOf(n);
  const stored = new Set(entries.map((e) => e.chunkNumber));
  for (let n = 0; n < chunkCount; n++) {
    if (stored.has(n) || o.done.has(n)) continue;
    if (o.writeZeros) await target.writeZeros(n * chunkSize, rawOf(n));
    o.done.add(n);
    progress.rawDone += rawOf(n);
  }
  o.onProgress?.({ ...progress });

  const pl = s.pieceLength;
  const span = (e: IndexEntry): [number, number] => [Math.floor(e.offset / pl), Math.floor((e.offset + e.storedLength - 1) / pl)];
  const todo = entries.filter((e) => !o.done.has(e.chunkNumber));
  const byPiece = new Map<number, IndexEntry[]>();
  for (const e of todo) {
    const [a, b] = span(e);
    for (let p = a; p <= b; p++) {
      let l = byPiece.get(p);
      if (!l) byPiece.set(p, (l = []));
      l.push(e);
    }
  }
  const queued = new Set<IndexEntry>();
  const ready: IndexEntry[] = [];
  // Stored bytes verified but not yet written: above BACKLOG_HIGH the download
  // holds until the writers are back under BACKLOG_LOW, so the pieces they need
  // are still in the store's memory pool when they get to them.
  let backlog = 0;
  let holding = false;
  const account = (bytes: number) => {
    backlog += bytes;
    if (!holding && backlog > BACKLOG_HIGH) s.holdDownload((holding = true));
    else if (holding && backlog < BACKLOG_LOW) s.holdDownload((holding = false));
  };
  let waiting: (() => void)[] = [];
  const wake = () => {
    const w = waiting;
    waiting = [];
    for (const r of w) r();
  };
  const offer = (e: IndexEntry) => {
    if (queued.has(e)) return;
    const [a, b] = span(e);
    for (let p = a; p <= b; p++) if (!s.has(p)) return;
    queued.add(e);
    ready.push(e);
    account(e.storedLength);
    wake();
  };
  const onVerified = (index: number) => byPiece.get(index)?.forEach(offer);
  s.torrent.on('verified', onVerified);
  const ac = new AbortController();
  let driverDone = false;
  try {
    for (const e of todo) offer(e);
    const driver = async () => {
      try {
        const rank = new Map<number, number>();
        s.pieceOrder().forEach((p, i) => rank.set(p, i));
        const order = [...byPiece.keys()].sort((a, b) => (rank.get(a) ?? a) - (rank.get(b) ?? b));
        for (const p of order) {
          const last = Math.max(...byPiece.get(p)!.map((e) => span(e)[1]));
          await s.ensurePiece(p, last, ac.signal);
          byPiece.get(p)!.forEach(offer);
        }
      } finally {
        driverDone = true;
        wake();
      }
    };
    const worker = async () => {
      // A chunk's stored bytes (free again once its raw bytes are written) and
      // its raw bytes (deflated chunks are inflated into it); page-aligned, so
      // the target writes either without a copy.
      const [stored, rawOut] = alignedBuffers(2, chunkSize + 1) as [Buffer, Buffer];
      for (;;) {
        ac.signal.throwIfAborted();
        const e = ready.shift();
        if (!e) {
          if (driverDone && queued.size === todo.length) return;
          if (driverDone) throw new CorruptImageError(`chunks left unwritten after every piece verified`);
          await new Promise<void>((r) => waiting.push(r));
          continue;
        }
        const raw = await decodeChunkAsync(e, await readStored(s, e.offset, e.offset + e.storedLength, stored), rawOut);
        await target.write(raw, e.chunkNumber * chunkSize);
        account(-e.storedLength);
        o.done.add(e.chunkNumber);
        progress.rawDone += raw.length;
        o.onProgress?.({ ...progress });
      }
    };
    const fail = (err: unknown): never => {
      ac.abort(err);
      wake();
      throw err;
    };
    const all = [driver().catch(fail), ...Array.from({ length: Math.max(1, o.parallel ?? 3) }, () => worker().catch(fail))];
    const results = await Promise.allSettled(all);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw ac.signal.aborted ? ac.signal.reason : rejected.reason;
  } finally {
    s.torrent.off('verified', onVerified);
    if (holding) s.holdDownload(false);
  }
}
