/**
 * HTTP fuzzer: one raw TCP connection per input, so nothing a client library
 * would refuse to send is out of reach. Random methods, paths built from every
 * route (case flips, %-encoding good and bad, dot segments, double slashes,
 * long and non-ASCII paths, random queries), headers (lengths that lie,
 * chunked bodies broken or not, tokens, MAC headers, ranges, huge values) and
 * bodies (JSON-ish and bytes). Reads the status line; a 5xx other than a 503
 * busy answer with Retry-After counts as a server error.
 */
import net from 'node:net';
import type { Rng } from './random.js';
import { type TargetReport, count, loop, newReport } from './target.js';

export interface HttpFuzzOptions {
  host: string;
  port: number;
  /** Every route path worth hitting (with real names where a route takes one). */
  routes: string[];
  /** A valid admin token, used now and then so the admin routes' insides are reached too. */
  adminToken?: string;
  /** Node addresses (source addresses for some requests) and MACs. */
  nodeIps: string[];
  macs: string[];
  rng: Rng;
  deadline: number;
  stop: () => boolean;
  /** Milliseconds to wait for a status line (default 1500). */
  answerTimeoutMs?: number;
}

function mutatePath(rng: Rng, path: string): string {
  let p = path;
  const n = rng.int(4);
  for (let i = 0; i < n; i++) {
    switch (rng.int(9)) {
      case 0:
        p = [...p].map((c) => (rng.chance(0.3) ? (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) : c)).join('');
        break;
      case 1:
        p = [...p].map((c) => (c !== '/' && rng.chance(0.2) ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join('');
        break;
      case 2: {
        const at = rng.int(p.length + 1);
        p = p.slice(0, at) + rng.pick(['/../', '/./', '//', '/..', '%2e%2e/', '%2f', '%00', '%zz', '%', '\\', ';', '#x', '?']) + p.slice(at);
        break;
      }
      case 3:
        p = p.replace(/\//g, () => (rng.chance(0.3) ? '//' : '/'));
        break;
      case 4:
        p += `?${query(rng)}`;
        break;
      case 5:
        p += rng.chance(0.5) ? '/' : `/${encodeURIComponent(rng.text(rng.length(40)))}`;
        break;
      case 6:
        p = `/${'a/'.repeat(rng.int(3000))}`;
        break;
      case 7:
        p += encodeURI(rng.text(rng.length(30))).replace(/%25/g, '%');
        break;
      default:
        p = `${rng.pick(['', 'http://x', '*', '//evil'])}${p}`;
    }
  }
  return p.replace(/[\r\n ]/g, '');
}

function query(rng: Rng): string {
  const keys = ['action', 'node', 'image', 'img', 'mac', 'session', 'params', 'name', 'state', 'progress', 'token', 'info_hash', 'peer_id', 'port', 'left', rng.text(5)];
  const values = ['os', 'install', 'capture', 'compute-0-0', '52:54:00:00:00:01', '{"action":"os"}', '{"action":', '%zz', '', '0', '-1', '1e308', rng.text(rng.length(60))];
  return Array.from({ length: 1 + rng.int(4) }, () => `${encodeURIComponent(rng.pick(keys))}=${rng.chance(0.7) ? encodeURIComponent(rng.pick(values)) : rng.pick(values)}`).join('&');
}

function body(rng: Rng, macs: string[]): Buffer {
  switch (rng.int(5)) {
    case 0:
      return Buffer.from(
        JSON.stringify({
          action: rng.pick(['os', 'install', 'capture', 'x']),
          name: `compute-0-${rng.int(3)}`,
          mac: rng.pick(macs),
          ip: '127.0.5.9',
          state: rng.text(8),
          progress: rng.next() * 200 - 50,
        }),
      );
    case 1:
      return Buffer.from(`{"a":${'['.repeat(rng.int(5000))}`);
    case 2:
      return Buffer.from(`params=${encodeURIComponent('{"action":"os"}')}&action=${rng.pick(['os', 'install'])}`);
    case 3:
      return Buffer.alloc(0);
    default:
      return rng.bytes(rng.length(70_000));
  }
}

function request(o: HttpFuzzOptions): Buffer {
  const { rng } = o;
  const method = rng.chance(0.85) ? rng.pick(['GET', 'GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) : rng.pick(['get', 'CONNECT', 'TRACE', 'BREW', rng.text(rng.length(10))]);
  const target = mutatePath(rng, rng.pick(o.routes));
  const version = rng.chance(0.9) ? 'HTTP/1.1' : rng.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1 extra', '']);
  const b = rng.chance(0.5) ? body(rng, o.macs) : Buffer.alloc(0);
  const headers: string[] = [];
  if (!rng.chance(0.05)) headers.push(`Host: ${rng.chance(0.9) ? `${o.host}:${o.port}` : rng.text(rng.length(40))}`);
  headers.push('Connection: close');
  const lengthChoice = rng.int(10);
  let chunked = false;
  if (b.length > 0 || rng.chance(0.2)) {
    if (lengthChoice < 6) headers.push(`Content-Length: ${b.length}`);
    else if (lengthChoice < 8) {
      headers.push('Transfer-Encoding: chunked');
      chunked = true;
    } else headers.push(`Content-Length: ${rng.pick([String(b.length + 1 + rng.int(100)), String(Math.max(0, b.length - 1)), '-1', 'abc', '99999999999', `${b.length}, ${b.length}`])}`);
  }
  if (rng.chance(0.5))
    headers.push(
      `Content-Type: ${rng.pick(['application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', rng.text(rng.length(30))])}`,
    );
  if (rng.chance(0.3)) headers.push(`Authorization: ${rng.chance(0.3) && o.adminToken ? `Bearer ${o.adminToken}` : rng.pick(['Bearer ', 'Bearer x', 'Basic Zm9vOmJhcg==', rng.text(rng.length(80))])}`);
  if (rng.chance(0.3)) headers.push(`X-RHN-Provisioning-MAC-${rng.int(3)}: ${rng.pick(['eth0 ', ''])}${rng.chance(0.7) ? rng.pick(o.macs) : rng.text(rng.length(30))}`);
  if (rng.chance(0.2)) headers.push(`X-Kickswarm-Session: ${rng.text(rng.length(64))}`);
  if (rng.chance(0.2))
    headers.push(`Range: ${rng.pick(['bytes=0-', 'bytes=0-0', 'bytes=-1', 'bytes=5-2', 'bytes=0-1,3-4', 'bytes=99999999999-', 'items=1-2', `bytes=${rng.int(5_000_000)}-${rng.int(5_000_000)}`])}`);
  if (rng.chance(0.1)) headers.push(`Cookie: ${rng.text(rng.length(200))}`);
  if (rng.chance(0.1)) headers.push(`X-Forwarded-For: ${rng.pick(o.nodeIps)}`);
  if (rng.chance(0.05)) headers.push(`X-Big: ${'x'.repeat(rng.int(20_000))}`);
  const extra = rng.int(3);
  for (let i = 0; i < extra; i++) headers.push(`${rng.text(1 + rng.int(12)).replace(/[:\r\n]/g, '')}: ${rng.text(rng.length(40)).replace(/[\r\n]/g, '')}`);
  const head = Buffer.from(`${method} ${target} ${version}\r\n${headers.map((h) => h.replace(/[\r\n]/g, '')).join('\r\n')}\r\n\r\n`, 'latin1');
  if (!chunked) return Buffer.concat([head, b]);
  const cut = rng.chance(0.3);
  const chunk = Buffer.concat([Buffer.from(`${(cut ? b.length + 5 : b.length).toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
  return Buffer.concat([head, rng.chance(0.1) ? Buffer.from('zz\r\n') : chunk]);
}

function exchange(o: HttpFuzzOptions, data: Buffer, localAddress: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    let settled = false;
    const sock = net.connect({ host: o.host, port: o.port, localAddress });
    const finish = (what: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => finish(got ? `partial:${got.slice(0, 40)}` : 'no-answer'), o.answerTimeoutMs ?? 1500);
    sock.on('error', () => finish(got.length ? got : 'reset'));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/\r\n\r\n/.test(got) || got.length > 4096) finish(got);
    });
    sock.on('end', () => finish(got || 'closed'));
    sock.on('connect', () => {
      // A few inputs stop half-way: the server must give up on them, not wait forever.
      const cut = o.rng.chance(0.05) ? o.rng.int(data.length) : data.length;
      sock.write(data.subarray(0, cut), () => undefined);
    });
  });
}

export async function fuzzHttp(o: HttpFuzzOptions): Promise<TargetReport> {
  const report = newReport('http');
  await loop(16, o.deadline, o.stop, async () => {
    const data = request(o);
    const from = o.rng.chance(0.3) ? o.rng.pick(o.nodeIps) : undefined;
    report.inputs++;
    const answer = await exchange(o, data, from);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(answer);
    if (!m) {
      count(report, answer.startsWith('partial') ? 'partial' : answer.length < 20 ? answer : 'unparsed');
      return;
    }
    const status = Number(m[1]);
    if (status === 503 && /\r\nretry-after:/i.test(answer)) return count(report, '503-retry-after');
    count(report, `${Math.floor(status / 100)}xx`);
    if (status >= 500) {
      report.serverErrors++;
      if (report.samples.length < 10) report.samples.push(`${status} <- ${JSON.stringify(data.subarray(0, 300).toString('latin1'))}`);
    }
  });
  return report;
}
