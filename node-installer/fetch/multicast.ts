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
import { InvalidInputError } from '../../protocol/errors.js';
import { fetchAddress, fetchHeaderAndIndex, localAddressTowards } from './multicast-http.js';
import { Receiver } from './multicast-receiver.js';
import { ChunkTable } from './multicast-state.js';

export type { MulticastProgress, MulticastStats, ReceiveMulticastOptions } from './multicast-types.js';
import type { MulticastStats, ReceiveMulticastOptions } from './multicast-types.js';

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
