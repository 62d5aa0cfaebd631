/**
 * One image's multicast sender (a frisbeed). It listens on group:port for
 * receivers' REQUESTs, merges them into one work list, and multicasts the
 * asked-for chunks block by block, exactly as stored in the `.ksimg` (still
 * compressed; receivers verify each with decodeChunk), at a capped, adaptive
 * byte rate. A REQUEST for the chunk being sent adds the blocks still ahead to
 * the current pass; blocks that went out after the receiver's `lastSeq` are
 * still on their way to it and are not sent again; the rest is queued. It
 * knows nothing of profiles or inventory; hostile datagrams are counted and
 * dropped.
 */
import type dgram from 'node:dgram';
import { NotFoundError, UnavailableError } from '../../protocol/errors.js';
import {
  blockCountFor,
  checkBlockSize,
  DATA_HEADER_SIZE,
  decodePacket,
  DEFAULT_BLOCK_SIZE,
  DropCounter,
  encodeData,
  imageIdFromSha256,
  PacketType,
  peekType,
  testBit,
  type RequestItem,
} from '../../protocol/frisbee.js';
import type { ImageHeader, IndexEntry } from '../../protocol/image-format.js';
import type { Logger } from '../log.js';
import { ImageFile } from './image-file.js';
import { orBitmap, PassLog, ReceiverTable, SendQueue, splitRequest } from './queue.js';
import { bindSocket, closeSocket, tryBuffers } from './socket.js';
import { RateController, TokenBucket } from './rate.js';

export const DEFAULT_RATE_BYTES_PER_SEC = 100_000_000;
export const DEFAULT_MIN_RATE_BYTES_PER_SEC = 1_000_000;

export interface MulticastSenderOptions {
  /** The `.ksimg` file. */
  imagePath: string;
  group: string;
  port: number;
  /** Random per session; carried in every datagram. */
  sessionId: number;
  /** Local address of the interface to send on and receive requests from (default 127.0.0.1). */
  interfaceAddress?: string;
  /** Multicast TTL (default 1: the local link). */
  ttl?: number;
  /** Deliver to receivers on this host too (default true; needed on one machine). */
  loopback?: boolean;
  /** DATA payload bytes (default 1400). */
  blockSize?: number;
  /** Send-rate cap, bytes of datagrams per second (default 100 MB/s). */
  rateBytesPerSec?: number;
  /** Floor for loss adaptation (default 1 MB/s). */
  minRateBytesPerSec?: number;
  /** Worst reported loss above which the rate drops (default 0.10). */
  lossHigh?: number;
  /** Worst reported loss below which the rate climbs back (default 0.02). */
  lossLow?: number;
  adaptIntervalMs?: number;
  /** Burst allowance in ms of the current rate (default 2). */
  burstMs?: number;
  log: Logger;
}

export interface SenderStats {
  rateCap: number;
  rate: number;
  lastLoss: number;
  receivers: number;
  /** Receivers heard from in the last 30 s that have not left. */
  activeReceivers: number;
  /** Datagram bytes (headers included). */
  bytesSent: number;
  /** Chunk bytes carried (bytesSent minus headers): compare with the image's stored data size. */
  payloadBytesSent: number;
  datagramsSent: number;
  chunksSent: number;
  chunksResent: number;
  requestsReceived: number;
  queueLength: number;
  dropped: { total: number; byReason: Record<string, number> };
}

interface Job {
  entry: IndexEntry;
  data: Buffer;
  count: number;
  blocks?: Buffer;
  pos: number;
  /** Seq each block went out with (PassLog). */
  seqs: Float64Array;
}

const MAX_SEND_QUEUE = 256;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class MulticastSender {
  imageId = 0;
  readonly blockSize: number;
  readonly rateCap: number;
  /** Date.now() of the last receiver message or datagram sent. */
  lastActivityAt = Date.now();
  private image: ImageFile | undefined;
  private sentOnce = new Set<number>();
  private readonly queue = new SendQueue();
  private readonly passes = new PassLog();
  private readonly receivers = new ReceiverTable();
  private readonly drops = new DropCounter();
  private readonly control: RateController;
  private readonly bucket: TokenBucket;
  private job: Job | undefined;
  private rx: dgram.Socket | undefined;
  private tx: dgram.Socket | undefined;
  private adaptTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private seq = 0;
  private s = { bytesSent: 0, payloadBytesSent: 0, datagramsSent: 0, chunksSent: 0, chunksResent: 0, requestsReceived: 0 };
  private readonly log: Logger;

  constructor(private readonly o: MulticastSenderOptions) {
    this.blockSize = checkBlockSize(o.blockSize ?? DEFAULT_BLOCK_SIZE);
    this.rateCap = o.rateBytesPerSec ?? DEFAULT_RATE_BYTES_PER_SEC;
    const min = Math.min(this.rateCap, o.minRateBytesPerSec ?? DEFAULT_MIN_RATE_BYTES_PER_SEC);
    this.control = new RateController({ cap: this.rateCap, min, lossHigh: o.lossHigh ?? 0.1, lossLow: o.lossLow ?? 0.02 });
    this.bucket = new TokenBucket(this.rateCap, o.burstMs ?? 2);
    this.log = o.log.child({ group: o.group, port: o.port });
  }

  /**
   * Reads header and index, binds the sockets, joins the group.
   * NotFoundError when the file is gone, CorruptImageError when it is
   * damaged, UnavailableError when a socket cannot be set up.
   */
  async start(): Promise<void> {
    try {
      this.image = await ImageFile.open(this.o.imagePath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`image file ${this.o.imagePath} is missing`);
      throw err;
    }
    this.imageId = imageIdFromSha256(this.image.header.sha256);
    try {
      await this.openSockets();
    } catch (err) {
      await this.close();
      if (err instanceof Error && 'syscall' in err) throw new UnavailableError(`multicast ${this.o.group}:${this.o.port}: ${err.message}`);
      throw err;
    }
    this.adaptTimer = setInterval(() => this.bucket.setRate(this.control.adapt()), this.o.adaptIntervalMs ?? 500);
    this.adaptTimer.unref();
  }

  private async openSockets(): Promise<void> {
    const iface = this.o.interfaceAddress ?? '127.0.0.1';
    this.rx = await bindSocket(this.o.port, this.o.group, true, this.log);
    this.rx.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address));
    this.rx.addMembership(this.o.group, iface);
    tryBuffers(this.rx, 4 * 1024 * 1024);
    this.tx = await bindSocket(0, iface, false, this.log);
    this.tx.setMulticastInterface(iface);
    this.tx.setMulticastTTL(this.o.ttl ?? 1);
    this.tx.setMulticastLoopback(this.o.loopback ?? true);
    tryBuffers(this.tx, undefined, 4 * 1024 * 1024);
  }

  /** The image's header (after start()). */
  get header(): ImageHeader {
    return this.image!.header;
  }

  /** True while chunks wait or are being sent. */
  get busy(): boolean {
    return this.job !== undefined || this.queue.length > 0;
  }

  stats(): SenderStats {
    return {
      rateCap: this.rateCap,
      rate: Math.round(this.control.rate),
      lastLoss: this.control.lastLoss,
      receivers: this.receivers.size,
      activeReceivers: this.receivers.active(30_000),
      ...this.s,
      queueLength: this.queue.length + (this.job ? 1 : 0),
      dropped: this.drops.snapshot(),
    };
  }

  private onMessage(msg: Buffer, from: string): void {
    if (this.closed) return;
    if (peekType(msg) === PacketType.DATA) return; // our own DATA, looped back
    const d = decodePacket(msg, { imageId: this.imageId, sessionId: this.o.sessionId, chunkCount: this.header.chunkCount });
    if (!d.ok) {
      this.drops.count(d.reason);
      return;
    }
    const p = d.packet;
    if (p.type === 'data') return;
    this.receivers.note(p.receiverId, from, p.type === 'leave');
    this.lastActivityAt = Date.now();
    if (p.type === 'report') this.control.report(p.received, p.lost);
    if (p.type !== 'request') return;
    this.s.requestsReceived++;
    for (const item of p.items) this.request(item, p.lastSeq);
    this.kick();
  }

  /**
   * Queues one item, or merges it into the current pass: wanted blocks still
   * ahead of the pass are sent by it; a block already sent after the
   * receiver's `lastSeq` is still on its way and is not sent again; the rest
   * is queued. Bad items are counted and dropped.
   */
  private request(item: RequestItem, lastSeq: number | undefined): void {
    const entry = this.image!.entry(item.chunk);
    if (!entry) return this.drops.count('not_stored');
    const count = blockCountFor(entry.storedLength, this.blockSize);
    if (item.blocks && item.blocks.length !== Math.ceil(count / 8)) return this.drops.count('bad_bitmap');
    const job = this.job?.entry.chunkNumber === item.chunk ? this.job : undefined;
    if (!job && (lastSeq === undefined || this.queue.has(item.chunk) || !this.passes.has(item.chunk))) {
      this.queue.add(item.chunk, item.blocks);
      return;
    }
    const { ahead, behind } = splitRequest(item, count, job?.pos, this.passes, lastSeq);
    if (job?.blocks) job.blocks = orBitmap(job.blocks, ahead);
    if (behind) this.queue.add(item.chunk, behind);
  }

  private kick(): void {
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (!this.closed) {
        if (!this.job) {
          // Read the head's bytes while it stays queued, so requests arriving meanwhile merge into it.
          const head = this.queue.peek();
          if (head === undefined) return;
          const entry = this.image!.entry(head)!;
          const data = await this.image!.stored(entry);
          if (this.closed) return;
          const next = this.queue.shift();
          if (!next || next.chunk !== head) throw new Error('multicast send queue changed under the pump');
          const count = blockCountFor(entry.storedLength, this.blockSize);
          this.job = { entry, data, count, blocks: next.blocks, pos: 0, seqs: this.passes.begin(next.chunk, count) };
          if (this.sentOnce.has(next.chunk)) this.s.chunksResent++;
          else this.sentOnce.add(next.chunk);
          this.s.chunksSent++;
        }
        await this.sendJob(this.job);
        this.job = undefined;
        this.lastActivityAt = Date.now();
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'multicast sender stopped sending');
      this.job = undefined;
      this.queue.clear();
    } finally {
      this.pumping = false;
    }
  }

  private async sendJob(job: Job): Promise<void> {
    const { entry, data, count } = job;
    const bs = this.blockSize;
    while (job.pos < count && !this.closed) {
      const b = job.pos;
      if (job.blocks && !testBit(job.blocks, b)) {
        job.pos++;
        continue;
      }
      const payload = data.subarray(b * bs, Math.min(data.length, (b + 1) * bs));
      const size = DATA_HEADER_SIZE + payload.length;
      if (this.tx!.getSendQueueCount() > MAX_SEND_QUEUE) {
        await sleep(1);
        continue;
      }
      if (!this.bucket.take(size)) {
        await sleep(this.bucket.waitMs(size));
        continue;
      }
      const dgramBuf = encodeData({
        imageId: this.imageId,
        sessionId: this.o.sessionId,
        seq: this.seq,
        chunk: entry.chunkNumber,
        block: b,
        blockCount: count,
        storedLength: entry.storedLength,
        blockSize: bs,
        payload,
      });
      job.seqs[b] = this.seq;
      this.seq = (this.seq + 1) >>> 0;
      this.tx!.send(dgramBuf, this.o.port, this.o.group);
      this.s.bytesSent += size;
      this.s.payloadBytesSent += payload.length;
      this.s.datagramsSent++;
      job.pos++;
    }
  }

  /** Stops sending, leaves the group, closes sockets and the file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.adaptTimer) clearInterval(this.adaptTimer);
      this.queue.clear();
      this.passes.clear();
      await Promise.all([closeSocket(this.rx), closeSocket(this.tx)]);
      await this.image?.close();
    })();
    return this.closing;
  }
}
