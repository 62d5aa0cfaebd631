/** The multicast receiver's options, progress and result (./multicast.ts runs it). */
import type { ImageHeader } from '../../protocol/image-format.js';
import type { Logger } from '../log.js';

export interface MulticastProgress {
  chunksDone: number;
  chunksTotal: number;
  /** Raw bytes written so far / in all stored chunks. */
  rawDone: number;
  rawTotal: number;
  bytesReceived: number;
}

export interface ReceiveMulticastOptions {
  /** e.g. `http://10.1.1.1:8080` */
  frontend: string;
  image: string;
  /** The node's own address: source of HTTP requests and multicast REQUESTs. */
  localAddress?: string;
  /** The install session token for getAddress and the header fetch. */
  session?: string;
  /**
   * Local address of the interface to join the group on. Default: localAddress,
   * else the address this host reaches the frontend from.
   */
  interfaceAddress?: string;
  /** Give up (fallback) after this long without DATA (default 15 s). */
  noDataTimeoutMs?: number;
  /** Drop this fraction of received datagrams on purpose (tests, demos; default 0). */
  lossRate?: number;
  /** Writes a verified chunk (up to 3 run at once, for distinct chunks); `raw` is reused for a later chunk once the promise resolves (copy what must be kept). */
  writeChunk: (chunkNumber: number, diskOffset: number, raw: Buffer) => Promise<void>;
  /** Also hand all-zero chunks to writeChunk (a target that may hold old data). */
  writeZeros?: boolean;
  onProgress?: (p: MulticastProgress) => void;
  signal?: AbortSignal;
  log: Logger;
  /** Chunks asked for at once (default 16). */
  window?: number;
  /** Chunk buffers held at once (default 64). */
  maxBufferedChunks?: number;
  requestTimeoutMs?: number;
  partialTimeoutMs?: number;
  tickMs?: number;
  reportIntervalMs?: number;
  /** Receive socket buffer asked of the kernel (default 4 MiB; capped by net.core.rmem_max). */
  recvBufferBytes?: number;
  random?: () => number;
}

export interface MulticastStats {
  image: string;
  group: string;
  port: number;
  header: ImageHeader;
  chunksWritten: number;
  rawBytesWritten: number;
  /** Bytes of DATA datagrams for this session that arrived (duplicates included). */
  bytesReceived: number;
  datagramsReceived: number;
  /** Dropped on purpose (`lossRate`). */
  datagramsDropped: number;
  /** Sequence gaps: lost on the way (includes datagramsDropped). */
  datagramsLost: number;
  /** Malformed or foreign datagrams, by reason. */
  rejected: { total: number; byReason: Record<string, number> };
  duplicateBlocks: number;
  /** DATA ignored because every chunk buffer was busy. */
  noBuffer: number;
  corruptChunks: number;
  requestsSent: number;
  elapsedMs: number;
}
