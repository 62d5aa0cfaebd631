/**
 * Receives an image over multicast (the frisbee path). Asks the frontend's
 * getAddress for the session, reads the header and index over HTTP (one Range
 * request), joins the group and asks for the chunks it lacks (ChunkTable has
 * the policy), assembles blocks, verifies each complete chunk with
 * decodeChunk (SHA-256) and hands it to `writeChunk` at once, in whatever
 * order chunks arrive, until every stored chunk is written; then leaves.
 *
 * `writeChunk` is never called concurrently. Zero chunks are not stored and
 * are only written with `writeZeros`. When no DATA for this session arrives
 * for `noDataTimeoutMs`, or the frontend cannot give an address or header,
 * this throws FallbackError with a `reason` (`no_data`, `get_address`,
 * `header`, `join`): fall back to the
 * swarm, then HTTP. A bad or unknown image name stays InvalidInputError /
 * NotFoundError; a writeChunk failure is rethrown as is.
 */
import { Agent } from 'undici';
import { sessionAgent } from '../session.js';
import type { FrisbeeAddress } from '../../protocol/frisbee.js';
import type { ImageHeader } from '../../protocol/image-format.js';
import type { Logger } from '../log.js';
import { InvalidInputError } from '../../protocol/errors.js';
import { fetchAddress, fetchHeaderAndIndex, localAddressTowards } from './multicast-http.js';
import { Receiver } from './multicast-receiver.js';
import { ChunkTable } from './multicast-state.js';

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

/** Joins the image's multicast session and writes every stored chunk; see the module doc. */
export async function receiveMulticast(o: ReceiveMulticastOptions): Promise<MulticastStats> {
  const started = Date.now();
  o.signal?.throwIfAborted();
  if (o.lossRate !== undefined && !(o.lossRate >= 0 && o.lossRate < 1)) throw new InvalidInputError(`loss rate ${o.lossRate} must be in [0, 1)`);
  const agent = sessionAgent(new Agent(o.localAddress ? { localAddress: o.localAddress } : {}), o.session);
  let addr: FrisbeeAddress;
  let header: ImageHeader;
  let table: ChunkTable;
  let iface: string;
  try {
    addr = await fetchAddress(o.frontend, o.image, agent);
    o.signal?.throwIfAborted();
    const hi = await fetchHeaderAndIndex(o.frontend, addr, agent);
    header = hi.header;
    table = new ChunkTable(hi.entries, o.maxBufferedChunks ?? 64);
    iface = o.interfaceAddress ?? o.localAddress ?? (await localAddressTowards(o.frontend));
    o.signal?.throwIfAborted();
  } finally {
    await agent.close().catch(() => undefined);
  }
  const r = new Receiver({ ...o, interfaceAddress: iface }, addr, header, table, started);
  return r.run();
}
