/**
 * The HTTP half of a multicast receive: `GET /frisbee/getAddress?img=NAME`
 * (OMF-style XML, docs/multicast.md) and the image's header + index through
 * one Range request on `/install/images/NAME`. A frontend that cannot be
 * reached or answers nonsense is a FallbackError;
 * an unknown image stays a NotFoundError and a bad name an InvalidInputError.
 */
import net from 'node:net';
import { type Dispatcher, request } from 'undici';
import { CorruptImageError, FallbackError, InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { FRISBEE_GET_ADDRESS_PATH } from '../../protocol/api.js';
import { type FrisbeeAddress, imageIdFromSha256 } from '../../protocol/frisbee.js';
import { fetchImageRange } from './http-stream.js';
import { HEADER_SIZE, INDEX_ENTRY_SIZE, MAX_INDEX_BYTES, parseHeaderAndIndex, type ImageHeader, type IndexEntry } from '../../protocol/image-format.js';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e]!);
}

function fallback(message: string, reason: string, detail: Record<string, unknown> = {}): FallbackError {
  return new FallbackError(message, reason, detail);
}

/** Parses the getAddress answer; UnavailableError when it is not one. */
export function parseAddressXml(text: string): FrisbeeAddress {
  if (!/<response\s+status="OK"\s*>/.test(text)) throw fallback('getAddress answer is not an OK <response>', 'get_address');
  const str = (tag: string): string => {
    const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(text);
    if (!m) throw fallback(`getAddress answer lacks <${tag}>`, 'get_address');
    return unescapeXml(m[1]!.trim());
  };
  const int = (tag: string, max = Number.MAX_SAFE_INTEGER): number => {
    const s = str(tag);
    const n = Number(s);
    if (!/^\d+$/.test(s) || n > max) throw fallback(`getAddress answer has a bad <${tag}>: ${s.slice(0, 40)}`, 'get_address');
    return n;
  };
  const mcAddress = str('mcAddress');
  const first = Number(mcAddress.split('.')[0]);
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(mcAddress) || first < 224 || first > 239) {
    throw fallback(`getAddress answer has a bad <mcAddress>: ${mcAddress.slice(0, 40)}`, 'get_address');
  }
  return {
    image: str('image'),
    mcAddress,
    mcPort: int('mcPort', 65535),
    sessionId: int('sessionId', 0xffffffff),
    imageId: int('imageId', 0xffffffff),
    chunkSize: int('chunkSize'),
    chunkCount: int('chunkCount', 0xffffffff),
    storedChunks: int('storedChunks', 0xffffffff),
    indexEnd: int('indexEnd', HEADER_SIZE + MAX_INDEX_BYTES),
    blockSize: int('blockSize', 65535),
    rateBytesPerSec: int('rateBytesPerSec'),
    ttl: int('ttl', 255),
  };
}

function errorText(body: string): string {
  const m = /<ERROR[^>]*>([^<]*)<\/ERROR>/.exec(body);
  return unescapeXml((m ? m[1]! : body).trim()).slice(0, 300);
}

function base(frontend: string): string {
  return frontend.replace(/\/+$/, '');
}

/** Asks the frontend for the image's multicast session. */
export async function fetchAddress(frontend: string, image: string, dispatcher?: Dispatcher): Promise<FrisbeeAddress> {
  const url = `${base(frontend)}${FRISBEE_GET_ADDRESS_PATH}?img=${encodeURIComponent(image)}`;
  let status: number;
  let body: string;
  try {
    const res = await request(url, { dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
    status = res.statusCode;
    body = await res.body.text();
  } catch (err) {
    throw fallback(`getAddress: cannot reach ${base(frontend)}: ${(err as Error).message}`, 'get_address');
  }
  if (status === 404) throw new NotFoundError(`getAddress: ${errorText(body)}`);
  if (status === 400) throw new InvalidInputError(`getAddress: ${errorText(body)}`);
  if (status !== 200) throw fallback(`getAddress: HTTP ${status}: ${errorText(body)}`, 'get_address', { status });
  const a = parseAddressXml(body);
  if (a.image !== image) throw fallback(`getAddress answered for image ${a.image}, asked ${image}`, 'get_address');
  if (a.indexEnd !== HEADER_SIZE + a.storedChunks * INDEX_ENTRY_SIZE) throw fallback('getAddress: indexEnd does not match storedChunks', 'get_address');
  return a;
}

/** Reads exactly the first `n` bytes of the image; failures other than 404 are fallback errors. */
async function firstBytes(frontend: string, image: string, n: number, dispatcher?: Dispatcher): Promise<Buffer> {
  try {
    return await fetchImageRange(frontend, image, 0, n, { dispatcher, timeoutMs: 30_000 });
  } catch (err) {
    if (err instanceof NotFoundError) throw err;
    throw fallback(`image header: ${(err as Error).message}`, 'header');
  }
}

/** Header and verified index of the image the address describes; UnavailableError when they disagree. */
export async function fetchHeaderAndIndex(frontend: string, a: FrisbeeAddress, dispatcher?: Dispatcher): Promise<{ header: ImageHeader; entries: IndexEntry[] }> {
  const buf = await firstBytes(frontend, a.image, a.indexEnd, dispatcher);
  let parsed: { header: ImageHeader; entries: IndexEntry[] };
  try {
    parsed = parseHeaderAndIndex(buf);
  } catch (err) {
    if (err instanceof CorruptImageError) throw fallback(`image ${a.image}: ${err.message}`, 'header');
    throw err;
  }
  const h = parsed.header;
  if (imageIdFromSha256(h.sha256) !== a.imageId || h.chunkCount !== a.chunkCount || h.storedChunks !== a.storedChunks) {
    throw fallback(`image ${a.image} changed between getAddress and the header fetch`, 'header');
  }
  return parsed;
}

/** The local address of the interface this host reaches the frontend from (one TCP connect). */
export async function localAddressTowards(frontend: string): Promise<string> {
  const u = new URL(frontend);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, family: 4, timeout: 10_000 });
    s.once('connect', () => {
      const a = s.localAddress;
      s.destroy();
      if (a) resolve(a.startsWith('::ffff:') ? a.slice(7) : a);
      else reject(fallback('cannot tell which interface reaches the frontend', 'join'));
    });
    s.once('timeout', () => {
      s.destroy();
      reject(fallback(`cannot reach ${frontend} to pick the multicast interface`, 'join'));
    });
    s.once('error', (err) => reject(fallback(`cannot reach ${frontend} to pick the multicast interface: ${err.message}`, 'join')));
  });
}
