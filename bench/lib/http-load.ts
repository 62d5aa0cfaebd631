/**
 * A closed-loop HTTP GET load generator in which every request comes from the
 * source address of the node it stands for.
 *
 * `close` (the honest case): each request is one new TCP connection bound to
 * the node's own address, `Connection: close`, as an installer fetching its
 * kickstart does. `keep-alive`: one undici Agent per worker, bound to one node's
 * address, sends that node's request again and again over a kept-alive
 * connection; it shows what the server does without connection set-up, but the
 * server then sees only `concurrency` distinct nodes.
 *
 * A 503 is honoured: the node is put aside until its Retry-After has passed,
 * then asked again before any new node; a node still waiting when the run ends
 * is counted in `deferred`. In `keep-alive` mode the worker itself waits.
 */
import http from 'node:http';
import { Agent, request as undiciRequest } from 'undici';

export type ConnectionMode = 'close' | 'keep-alive';

export interface LoadOptions {
  host: string;
  port: number;
  path: string;
  /** Source address of node i (0 <= i < nodes). */
  address: (i: number) => string;
  /** Extra request headers of node i. */
  headers?: (i: number) => Record<string, string>;
  nodes: number;
  concurrency: number;
  /** Measured seconds. */
  seconds: number;
  /** Seconds of load before the measured window (results discarded). */
  warmupSeconds: number;
  connection: ConnectionMode;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Called at the start and the end of the measured window. */
  onWindow?: (edge: 'start' | 'end') => void;
}

export interface LoadResult {
  seconds: number;
  /** 200 answers in the window. */
  ok: number;
  /** Latency of each 200 in the window, milliseconds (request start to last body byte). */
  okLatenciesMs: number[];
  /** 503 answers in the window. */
  busy: number;
  retryAfterSeconds: number[];
  /** Other statuses in the window, by status. */
  otherStatus: Record<string, number>;
  /** Failed requests (no HTTP answer) in the window. */
  errors: number;
  /** Up to ten distinct error messages. */
  errorSamples: string[];
  /** Nodes told to come back later that were still waiting at the end. */
  deferred: number;
  /** Distinct nodes that got a 200 in the window. */
  distinctNodesServed: number;
  /** Body bytes of the 200s. */
  okBytes: number;
}

interface Answer {
  status: number;
  retryAfter?: number;
  bytes: number;
}

function getClose(o: LoadOptions, node: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: o.host, port: o.port, path: o.path, localAddress: o.address(node), headers: o.headers?.(node), agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: retryAfter(res.headers['retry-after']), bytes }));
    });
    req.setTimeout(o.timeoutMs ?? 30_000, () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function getKeepAlive(o: LoadOptions, node: number, agent: Agent): Promise<Answer> {
  const res = await undiciRequest(`http://${o.host}:${o.port}${o.path}`, {
    dispatcher: agent,
    headers: o.headers?.(node),
    headersTimeout: o.timeoutMs ?? 30_000,
    bodyTimeout: o.timeoutMs ?? 30_000,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const ra = res.headers['retry-after'];
  return { status: res.statusCode, retryAfter: retryAfter(Array.isArray(ra) ? ra[0] : ra), bytes: body.length };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function retryAfter(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Runs the load for warmup + seconds and reports the measured window only. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const r: LoadResult = {
    seconds: o.seconds,
    ok: 0,
    okLatenciesMs: [],
    busy: 0,
    retryAfterSeconds: [],
    otherStatus: {},
    errors: 0,
    errorSamples: [],
    deferred: 0,
    distinctNodesServed: 0,
    okBytes: 0,
  };
  const served = new Uint8Array(o.nodes);
  const waiting: { node: number; due: number }[] = [];
  let nextNode = 0;
  const t0 = Date.now();
  const windowStart = t0 + o.warmupSeconds * 1000;
  const windowEnd = windowStart + o.seconds * 1000;
  let measuring = false;
  const startTimer = setTimeout(() => {
    measuring = true;
    o.onWindow?.('start');
  }, windowStart - t0);

  const pick = (): number => {
    const head = waiting[0];
    if (head && head.due <= Date.now()) return waiting.shift()!.node;
    return nextNode++ % o.nodes;
  };
  const putAside = (node: number, seconds: number) => {
    const due = Date.now() + seconds * 1000;
    let at = waiting.length;
    while (at > 0 && waiting[at - 1]!.due > due) at--;
    waiting.splice(at, 0, { node, due });
  };

  const worker = async (w: number) => {
    const agent = o.connection === 'keep-alive' ? new Agent({ localAddress: o.address(w % o.nodes), connections: 1, pipelining: 1 }) : undefined;
    try {
      while (Date.now() < windowEnd) {
        const node = agent ? w % o.nodes : pick();
        const started = process.hrtime.bigint();
        let a: Answer | undefined;
        let failure: string | undefined;
        try {
          a = agent ? await getKeepAlive(o, node, agent) : await getClose(o, node);
        } catch (e) {
          failure = (e as Error).message || String(e);
        }
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (a?.status === 503) {
          if (agent) await sleep(Math.min((a.retryAfter ?? 1) * 1000, Math.max(0, windowEnd - Date.now())));
          else putAside(node, a.retryAfter ?? 1);
        }
        if (!measuring || Date.now() > windowEnd) continue;
        if (failure !== undefined) {
          r.errors++;
          if (r.errorSamples.length < 10 && !r.errorSamples.includes(failure)) r.errorSamples.push(failure);
        } else if (a!.status === 200) {
          r.ok++;
          r.okBytes += a!.bytes;
          r.okLatenciesMs.push(ms);
          served[node] = 1;
        } else if (a!.status === 503) {
          r.busy++;
          if (a!.retryAfter !== undefined) r.retryAfterSeconds.push(a!.retryAfter);
        } else {
          r.otherStatus[a!.status] = (r.otherStatus[a!.status] ?? 0) + 1;
        }
      }
    } finally {
      await agent?.close();
    }
  };

  const ended = new Promise<void>((resolve) =>
    setTimeout(() => {
      o.onWindow?.('end');
      resolve();
    }, windowEnd - t0),
  );
  await Promise.all([...Array.from({ length: o.concurrency }, (_, w) => worker(w)), ended]);
  clearTimeout(startTimer);
  r.deferred = waiting.length;
  r.distinctNodesServed = served.reduce((n, v) => n + v, 0);
  return r;
}
