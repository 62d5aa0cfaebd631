/**
 * The image file in one plain HTTP/1.1 GET whose socket reads into one reused
 * buffer (`net.connect({ onread })`): the receive path of an install by method
 * `http`. undici and Node.js's own client read every socket chunk into fresh
 * memory, which costs a node more than the receive itself (bench:receive
 * `--ways http`); here each body byte is copied once, from the read buffer
 * into the buffer its reader names (a chunk's slot in the image reader).
 *
 * Contract: `openImageBody` answers a reader only for an `http:` base whose
 * GET answers 200 with one Content-Length and neither Transfer-Encoding nor
 * Content-Encoding; for anything else that is no error status (an `https:`
 * base, a chunked or encoded body) it answers undefined, and the caller uses
 * the general client (http-stream.ts). 404 is NotFoundError; other statuses, a
 * malformed or oversized response head, a connection that ends before
 * Content-Length bytes and `timeoutMs` without a byte while bytes are wanted
 * are UnavailableError. The server's bytes are never more than one read
 * buffer ahead of the reader: the socket stops reading until they are taken.
 */
import net from 'node:net';
import { NotFoundError, UnavailableError } from '../../protocol/errors.js';
import { imagePath } from '../../protocol/api.js';
import type { ExactByteSource } from '../../protocol/image-reader.js';

/** Bytes per socket read. */
const READ_BYTES = 256 * 1024;
/** The longest response head accepted. */
const MAX_HEAD = 16 * 1024;

export interface ImageBodyOptions {
  /** The frontend's base URL. */
  base: string;
  name: string;
  /** The node's own address to connect from. */
  localAddress?: string;
  /** Extra request headers (the session token). */
  headers?: Record<string, string>;
  /** Longest wait for the response head, and for the next bytes while bytes are wanted (default 120 s). */
  timeoutMs?: number;
}

export interface ImageBody extends ExactByteSource {
  /** The body's length (Content-Length). */
  readonly length: number;
  /** Body bytes received so far. */
  readonly received: number;
}

interface Head {
  status: number;
  headers: Map<string, string[]>;
}

/** Parses a response head (without its blank line); throws UnavailableError when it is not HTTP/1.x. */
export function parseResponseHead(text: string): Head {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/.exec(lines[0] ?? '');
  if (!m) throw new UnavailableError(`not an HTTP/1.x response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /^[ \t]/.test(line)) throw new UnavailableError(`malformed response header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return { status: Number(m[1]), headers };
}

/** The one Content-Length of a plain (not chunked, not encoded) body, else undefined. */
function plainLength(h: Head): number | undefined {
  const te = h.headers.get('transfer-encoding');
  const ce = h.headers.get('content-encoding')?.filter((v) => v.toLowerCase() !== 'identity');
  const cl = new Set(h.headers.get('content-length') ?? []);
  if (te || ce?.length || cl.size !== 1) return undefined;
  const v = [...cl][0]!;
  return /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

class Body implements ImageBody {
  length = 0;
  received = 0;
  private head: Buffer | undefined = Buffer.alloc(0);
  private carry = Buffer.allocUnsafe(READ_BYTES);
  private carryAt = 0;
  private carryEnd = 0;
  private want: { out: Buffer; got: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;
  private opened: { resolve: (h: Head & { early: string }) => void; reject: (e: Error) => void } | undefined;
  private readonly sock: net.Socket;

  constructor(
    url: URL,
    o: ImageBodyOptions,
    request: string,
    private readonly timeoutMs: number,
  ) {
    this.sock = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      onread: { buffer: Buffer.allocUnsafe(READ_BYTES), callback: (n: number, buf: Uint8Array) => this.onRead(buf.subarray(0, n)) },
    });
    this.sock.setNoDelay(true);
    this.sock.setTimeout(timeoutMs, () => this.fail(new UnavailableError(`GET ${url.href}: no data for ${timeoutMs / 1000} s`)));
    this.sock.on('error', (e) => this.fail(new UnavailableError(`GET ${url.href}: ${e.message}`)));
    this.sock.on('close', () => {
      if (this.head) this.fail(new UnavailableError(`GET ${url.href}: the connection closed before a whole response head`));
      else if (!this.done()) this.fail(new UnavailableError(`GET ${url.href}: the connection closed after ${this.received} of ${this.length} body bytes`));
    });
    this.sock.write(request);
  }

  /** Resolves with the response head once it is in. */
  headIn(): Promise<Head & { early: string }> {
    return new Promise((resolve, reject) => {
      if (this.failed) reject(this.failed);
      else this.opened = { resolve, reject };
    });
  }

  private done(): boolean {
    return this.head === undefined && this.received === this.length;
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.sock.destroy();
    this.opened?.reject(e);
    this.want?.reject(e);
    this.opened = this.want = undefined;
  }

  /**
   * Takes the response head out of the first reads (interim 1xx responses
   * are skipped); returns the body bytes that came with it, or undefined
   * while the head is incomplete or when the body is not read here.
   */
  private takeHead(b: Uint8Array): Uint8Array | undefined {
    let all = Buffer.concat([this.head!, b]);
    for (;;) {
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (all.length > MAX_HEAD) this.fail(new UnavailableError(`the response head is over ${MAX_HEAD} bytes`));
        else this.head = all;
        return undefined;
      }
      let h: Head;
      try {
        h = parseResponseHead(all.subarray(0, end).toString('latin1'));
      } catch (e) {
        this.fail(e as Error);
        return undefined;
      }
      all = all.subarray(end + 4);
      if (h.status >= 100 && h.status < 200 && h.status !== 101) continue;
      this.head = undefined;
      const length = plainLength(h);
      this.length = length ?? 0;
      this.opened?.resolve({ ...h, early: all.subarray(0, 200).toString('utf8') });
      this.opened = undefined;
      if (h.status === 200 && length !== undefined) return all;
      this.sock.destroy();
      return undefined;
    }
  }

  /** One socket read (valid only during the call); false stops the socket reading until bytes are wanted. */
  private onRead(read: Uint8Array): boolean {
    if (this.failed) return false;
    let b: Uint8Array | undefined = read;
    if (this.head) {
      b = this.takeHead(read);
      if (!b) return !this.failed && this.head !== undefined;
    }
    b = b.subarray(0, this.length - this.received);
    this.received += b.length;
    const w = this.want;
    let at = 0;
    if (w) {
      at = Math.min(b.length, w.out.length - w.got);
      w.out.set(b.subarray(0, at), w.got);
      w.got += at;
      if (w.got === w.out.length) this.settle();
    }
    if (at < b.length) {
      this.carry.set(b.subarray(at), 0);
      this.carryAt = 0;
      this.carryEnd = b.length - at;
    }
    if (this.done()) {
      this.sock.destroy();
      // The end: a read asking for more gets what there is.
      if (this.want) this.settle();
    }
    if (this.carryEnd > this.carryAt || !this.want) {
      this.sock.setTimeout(0);
      return false;
    }
    return true;
  }

  private settle(): void {
    const w = this.want!;
    this.want = undefined;
    w.resolve(w.out.subarray(0, w.got));
  }

  readExact(n: number, into?: Buffer): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.want) return Promise.reject(new Error('readExact called while a read is pending'));
    const out = into && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    const k = Math.min(n, this.carryEnd - this.carryAt);
    this.carry.copy(out, 0, this.carryAt, this.carryAt + k);
    this.carryAt += k;
    if (k === n || this.done()) return Promise.resolve(out.subarray(0, k));
    return new Promise((resolve, reject) => {
      this.want = { out, got: k, resolve, reject };
      this.sock.setTimeout(this.timeoutMs);
      this.sock.resume();
    });
  }

  async close(): Promise<void> {
    if (!this.failed) this.fail(new UnavailableError('the image body was closed'));
  }
}

/** Opens the image body as the module doc says; undefined where the general client must be used. */
export async function openImageBody(o: ImageBodyOptions): Promise<ImageBody | undefined> {
  const url = new URL(`${o.base.replace(/\/+$/, '')}${imagePath(o.name)}`);
  if (url.protocol !== 'http:') return undefined;
  const host = url.host;
  const lines = [`GET ${url.pathname} HTTP/1.1`, `Host: ${host}`, 'Connection: close', 'Accept-Encoding: identity'];
  for (const [k, v] of Object.entries(o.headers ?? {})) lines.push(`${k}: ${v}`);
  const request = `${lines.join('\r\n')}\r\n\r\n`;
  if (/[^\x20-\x7e\r\n]/.test(request) || lines.some((l) => /[\r\n]/.test(l))) throw new UnavailableError(`cannot send ${url.href}: a request line or header has control characters`);
  const body = new Body(url, o, request, o.timeoutMs ?? 120_000);
  const h = await body.headIn();
  if (h.status === 404) throw new NotFoundError(`image ${o.name} is not on the frontend (${url.href})`);
  if (h.status !== 200) throw new UnavailableError(`GET ${url.href}: HTTP ${h.status} ${h.early.trim()}`);
  if (plainLength(h) === undefined) return undefined;
  return body;
}
