/**
 * One multicast receive in progress (see multicast.ts for the contract): the
 * sockets, the DATA path into the ChunkTable, verification and serialized
 * writes, the request/report ticks and the no-data watchdog.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { CorruptImageError, FallbackError } from '../../protocol/errors.js';
import { decodePacket, DropCounter, encodeMember, encodeReport, packRequests, type DataPacket, type FrisbeeAddress, type PacketIds } from '../../protocol/frisbee.js';
import { decodeChunkAsync, expectedRawLength, zeroBuffer, type ImageHeader } from '../../protocol/image-format.js';
import type { Logger } from '../log.js';
import type { MulticastStats, ReceiveMulticastOptions } from './multicast-types.js';
import type { ChunkTable } from './multicast-state.js';

/** Free raw buffers kept for the next chunks (more are made while more chunks decode at once). */
const RAW_BUFFERS_KEPT = 8;
/**
 * Chunk writes that may run at once, each lane writing its chunks in turn:
 * a write that bypasses the page cache waits for the device, and one at a
 * time would leave a disk idle between writes.
 */
const WRITE_LANES = 3;

export class Receiver {
  private readonly ids: PacketIds;
  private readonly receiverId = crypto.randomBytes(4).readUInt32LE(0);
  private readonly rejected = new DropCounter();
  private readonly log: Logger;
  private rx: dgram.Socket | undefined;
  private tx: dgram.Socket | undefined;
  private timers: NodeJS.Timeout[] = [];
  private writes: Promise<void>[] = Array.from({ length: WRITE_LANES }, () => Promise.resolve());
  private nextLane = 0;
  private lastDataAt = Date.now();
  private quietSeen = false;
  private expectedSeq: number | undefined;
  private period = { received: 0, lost: 0 };
  private settle!: { resolve: () => void; reject: (e: unknown) => void };
  private finished = false;
  private rawDone = 0;
  /** Buffers deflated chunks are inflated into, free again once their chunk is written or failed. */
  private readonly rawFree: Buffer[] = [];
  private s = { bytesReceived: 0, datagramsReceived: 0, datagramsDropped: 0, datagramsLost: 0, duplicateBlocks: 0, noBuffer: 0, corruptChunks: 0, requestsSent: 0 };

  constructor(
    private readonly o: ReceiveMulticastOptions,
    private readonly addr: FrisbeeAddress,
    private readonly header: ImageHeader,
    private readonly table: ChunkTable,
    private readonly started: number,
  ) {
    this.ids = { imageId: addr.imageId, sessionId: addr.sessionId };
    this.log = o.log.child({ image: addr.image, group: addr.mcAddress, port: addr.mcPort });
  }

  async run(): Promise<MulticastStats> {
    const done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    const onAbort = () => this.fail(this.o.signal!.reason);
    this.o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (this.table.total > 0) {
        await this.open();
        this.send(encodeMember('join', this.ids, this.receiverId));
        this.lastDataAt = Date.now();
        this.tick();
        this.timers.push(setInterval(() => this.tick(), this.o.tickMs ?? 10));
        this.timers.push(setInterval(() => this.report(), this.o.reportIntervalMs ?? 500));
        await done;
        await this.sendNow(encodeMember('leave', this.ids, this.receiverId));
      }
      await Promise.all(this.writes);
    } finally {
      this.o.signal?.removeEventListener('abort', onAbort);
      await this.cleanup();
      await Promise.allSettled(this.writes);
    }
    if (this.o.writeZeros) await this.zeros();
    const st = this.stats();
    this.log.info({ ...st, header: undefined, rejected: st.rejected.total }, 'multicast receive complete');
    return st;
  }

  private async open(): Promise<void> {
    const iface = this.o.interfaceAddress ?? this.o.localAddress ?? '127.0.0.1';
    const bind = (s: dgram.Socket, port: number, address?: string) =>
      new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(port, address, () => {
          s.off('error', reject);
          resolve();
        });
      });
    try {
      this.rx = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      this.rx.on('error', (e) => this.log.warn({ err: e.message }, 'multicast socket error'));
      this.rx.on('message', (m) => this.onMessage(m));
      await bind(this.rx, this.addr.mcPort, this.addr.mcAddress);
      this.rx.addMembership(this.addr.mcAddress, iface);
      try {
        this.rx.setRecvBufferSize(this.o.recvBufferBytes ?? 4 * 1024 * 1024);
      } catch {
        // capped by the kernel
      }
      this.tx = dgram.createSocket('udp4');
      this.tx.on('error', (e) => this.log.warn({ err: e.message }, 'multicast socket error'));
      await bind(this.tx, 0, this.o.localAddress);
      this.tx.setMulticastInterface(iface);
      this.tx.setMulticastTTL(Math.max(1, this.addr.ttl));
    } catch (err) {
      throw new FallbackError(`cannot join ${this.addr.mcAddress}:${this.addr.mcPort} on ${iface}: ${(err as Error).message}`, 'join');
    }
  }

  private send(buf: Buffer): void {
    this.tx?.send(buf, this.addr.mcPort, this.addr.mcAddress, (err) => {
      if (err) this.log.debug({ err: err.message }, 'multicast send failed');
    });
  }

  /** Sends and waits for the datagram to leave (at most 200 ms). */
  private sendNow(buf: Buffer): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 200);
      if (!this.tx) return resolve();
      this.tx.send(buf, this.addr.mcPort, this.addr.mcAddress, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private onMessage(msg: Buffer): void {
    if (this.finished) return;
    if ((this.o.lossRate ?? 0) > 0 && (this.o.random ?? Math.random)() < this.o.lossRate!) {
      this.s.datagramsDropped++;
      return;
    }
    const d = decodePacket(msg, { imageId: this.addr.imageId, sessionId: this.addr.sessionId, chunkCount: this.header.chunkCount });
    if (!d.ok) return this.rejected.count(d.reason);
    const p = d.packet;
    if (p.type === 'request') {
      if (p.receiverId !== this.receiverId) this.table.othersAsked(p.items, Date.now());
      return;
    }
    if (p.type === 'data') this.onData(p, msg.length);
  }

  private onData(p: DataPacket, size: number): void {
    const now = Date.now();
    this.lastDataAt = now;
    this.s.bytesReceived += size;
    this.s.datagramsReceived++;
    this.period.received++;
    if (this.expectedSeq === undefined) this.expectedSeq = (p.seq + 1) >>> 0;
    else {
      const gap = (p.seq - this.expectedSeq) >>> 0;
      if (gap < 0x80000000) {
        this.s.datagramsLost += gap;
        this.period.lost += gap;
        this.expectedSeq = (p.seq + 1) >>> 0;
      }
    }
    const res = this.table.add(p, now);
    if (res === 'duplicate' || res === 'done') this.s.duplicateBlocks++;
    else if (res === 'no_buffer') this.s.noBuffer++;
    else if (res === 'mismatch' || res === 'not_stored') this.rejected.count(res);
    else if (res === 'complete') this.complete(p.chunk);
  }

  private complete(chunk: number): void {
    const { entry, stored } = this.table.take(chunk);
    const out = this.rawFree.pop() ?? Buffer.allocUnsafe(this.header.chunkSize + 1);
    const release = () => void (this.rawFree.length < RAW_BUFFERS_KEPT && this.rawFree.push(out));
    const raw = decodeChunkAsync(entry, stored, out);
    raw.catch(() => undefined);
    const lane = this.nextLane++ % WRITE_LANES;
    this.writes[lane] = this.writes[lane]!.then(async () => {
      if (this.finished) return;
      let data: Buffer;
      try {
        data = await raw;
      } catch (err) {
        if (!(err instanceof CorruptImageError)) throw err;
        this.s.corruptChunks++;
        this.log.warn({ chunk, err: err.message }, 'chunk failed verification; asking again');
        this.table.reset(chunk);
        release();
        return;
      }
      await this.o.writeChunk(chunk, chunk * this.header.chunkSize, data);
      this.table.markWritten(chunk);
      release();
      this.rawDone += data.length;
      this.o.onProgress?.({ chunksDone: this.table.written, chunksTotal: this.table.total, rawDone: this.rawDone, rawTotal: this.table.rawTotal, bytesReceived: this.s.bytesReceived });
      if (this.table.complete) this.finish();
    });
    this.writes[lane]!.catch((err) => this.fail(err));
  }

  private tick(): void {
    if (this.finished) return;
    const now = Date.now();
    const quiet = now - this.lastDataAt;
    const limit = this.o.noDataTimeoutMs ?? 15_000;
    // Decide only on the second quiet tick: a poll phase ran in between, so a
    // process that was merely descheduled reads its socket before giving up.
    const wasQuiet = this.quietSeen;
    this.quietSeen = quiet > limit;
    if (quiet > limit && wasQuiet) {
      this.fail(
        new FallbackError(
          `multicast: no data from ${this.addr.mcAddress}:${this.addr.mcPort} for ${Math.round(quiet / 1000)} s ` +
            `(${this.table.written} of ${this.table.total} chunks written); falling back to the swarm, then HTTP`,
          'no_data',
          { chunksWritten: this.table.written, chunksTotal: this.table.total },
        ),
      );
      return;
    }
    const items = this.table.plan(now, {
      window: this.o.window ?? 16,
      requestTimeoutMs: this.o.requestTimeoutMs ?? 100,
      partialTimeoutMs: this.o.partialTimeoutMs ?? 30,
    });
    if (!items.length) return;
    const lastSeq = this.expectedSeq === undefined ? undefined : (this.expectedSeq - 1) >>> 0;
    for (const buf of packRequests(this.ids, this.receiverId, items, lastSeq)) {
      this.send(buf);
      this.s.requestsSent++;
    }
  }

  private report(): void {
    if (this.finished || this.period.received + this.period.lost === 0) return;
    this.send(encodeReport(this.ids, this.receiverId, this.period.received, this.period.lost));
    this.period = { received: 0, lost: 0 };
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.settle.resolve();
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.settle.reject(err);
  }

  private async zeros(): Promise<void> {
    const h = this.header;
    for (let n = 0; n < h.chunkCount; n++) if (!this.table.has(n)) await this.o.writeChunk(n, n * h.chunkSize, zeroBuffer(expectedRawLength(h, n)));
  }

  private async cleanup(): Promise<void> {
    this.finished = true;
    for (const t of this.timers) clearInterval(t);
    const close = (s: dgram.Socket | undefined) =>
      new Promise<void>((resolve) => {
        if (!s) return resolve();
        try {
          s.close(() => resolve());
        } catch {
          resolve();
        }
      });
    await Promise.all([close(this.rx), close(this.tx)]);
    this.rx = this.tx = undefined;
  }

  private stats(): MulticastStats {
    return {
      image: this.addr.image,
      group: this.addr.mcAddress,
      port: this.addr.mcPort,
      header: this.header,
      chunksWritten: this.table.written,
      rawBytesWritten: this.rawDone,
      ...this.s,
      rejected: this.rejected.snapshot(),
      elapsedMs: Date.now() - this.started,
    };
  }
}
