/**
 * Plain HTTP pass-through to the frontend: method, path and query, headers minus
 * hop-by-hop ones (and Host), and the body are forwarded; the answer streams
 * back the same way. An unreachable frontend is a 502 with a one-line reason.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { request, type Dispatcher } from 'undici';
import { describe } from './webseed.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/** `headers` without hop-by-hop headers, including those the Connection header names. */
export function endToEnd(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(key) || named.has(key)) continue;
    out[key] = v;
  }
  return out;
}

export interface ForwardOptions {
  dispatcher?: Dispatcher;
  /** Called with the number of body bytes relayed from the frontend. */
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

/** Relays `req` to `target` and the answer back to `res`. */
export async function forward(req: IncomingMessage, res: ServerResponse, target: URL, opts: ForwardOptions = {}): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const hasBody = method !== 'GET' && method !== 'HEAD';
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await request(target, {
      method: method as Dispatcher.HttpMethod,
      headers: endToEnd(req.headers),
      body: hasBody ? req : undefined,
      dispatcher: opts.dispatcher,
      signal: opts.signal,
    });
  } catch (err) {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`frontend unreachable: ${describe(err)}\n`);
    } else {
      res.destroy();
    }
    return;
  }
  res.writeHead(upstream.statusCode, endToEnd(upstream.headers));
  if (opts.onBytes) upstream.body.on('data', (chunk: Buffer) => opts.onBytes!(chunk.length));
  try {
    await pipeline(upstream.body, res);
  } catch {
    res.destroy();
  }
}
