import { expect } from 'chai';
import {
  API_BOOT_PATH,
  API_NODES_PATH,
  API_PROFILES_STATUS_PATH,
  KICKSTART_PATH,
  OMF_CLEAR_BOOT_IMAGE_PATH,
  OMF_SET_BOOT_IMAGE_PATH,
  SETPXEBOOT_PATH,
  apiNodeBootPath,
  apiNodePath,
} from '../../protocol/api.js';
import { type TestServer, startTestServer } from '../helpers/http.js';

/** Small deterministic PRNG (mulberry32) so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PATHS = [
  KICKSTART_PATH,
  SETPXEBOOT_PATH,
  OMF_SET_BOOT_IMAGE_PATH,
  OMF_CLEAR_BOOT_IMAGE_PATH,
  API_NODES_PATH,
  apiNodePath('compute-0-0'),
  apiNodeBootPath('compute-0-0'),
  API_BOOT_PATH,
  API_PROFILES_STATUS_PATH,
  '/api/v1/nodes/%zz',
  '/api/v1/nodes/%00',
  '/api/v1/nodes/..%2f..%2fetc',
  `${KICKSTART_PATH}/../../etc/passwd`,
  '/',
  '//',
];

const JUNK_VALUES = [
  '%zz',
  '%',
  '%%25%',
  '%E0%A4%A',
  '%C0%AF',
  '%00',
  '\u0000',
  '{"action":',
  '{"action":"os"}',
  '{"action":{"x":1}}',
  'os',
  'install',
  'capture',
  'OS ',
  '[]',
  'null',
  'eth0 52:54:00:00:03:01',
  'eth0 52:54:00:00:03:01 extra',
  'ib0 80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:0d:01',
  '52:54:00:00:03:01',
  'node1-2.sb8.orbit-lab.org',
  '../../etc/passwd',
  'compute-0-0',
  'Bearer',
];

describe('http: fuzz', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ maxInFlight: 2 });
    s.addNode('compute-0-0', '52:54:00:00:03:01', '127.0.3.1', 'install');
    s.addNode('node1-2', '52:54:00:00:03:02', '127.0.3.2', 'os');
    s.renderer.delayMs = 20;
  });
  after(() => s.close());

  /** FUZZ_SEED=<n> replays another sequence. */
  it('answers hundreds of junk requests on every route with < 500 (503 only when busy) and stays up', async function () {
    this.timeout(60_000);
    const rand = rng(Number(process.env.FUZZ_SEED ?? 20240611));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const junkString = (max: number): string => {
      const n = Math.floor(rand() * max);
      let out = '';
      for (let i = 0; i < n; i++) out += String.fromCharCode(32 + Math.floor(rand() * 95));
      return out;
    };
    const value = (): string => (rand() < 0.6 ? pick(JUNK_VALUES) : rand() < 0.9 ? junkString(40) : 'x'.repeat(4000 + Math.floor(rand() * 4000)));
    const query = (): string => {
      const parts: string[] = [];
      for (let i = Math.floor(rand() * 4); i > 0; i--) {
        const key = pick(['action', 'params', 'node', 'image', 'appliance', junkString(8), 'a[]', 'a[b]']);
        parts.push(`${encodeURI(key).replace(/#/g, '%23')}=${rand() < 0.5 ? encodeURIComponent(value()) : pick(['%zz', '%', '%E0%A4%A', '%00', '%%'])}`);
      }
      return parts.length ? `?${parts.join('&')}` : '';
    };
    const bodies = (): string | Buffer | undefined =>
      pick([
        undefined,
        '',
        'action=os',
        'params=%7B%22action%22%3A%22os%22%7D',
        '{"action":"os"}',
        '{"name":"x","mac":"y","ip":"z"}',
        '{"action":"install","all":true}',
        '{"names":[1,2,3],"action":"os"}',
        '['.repeat(50_000),
        '{"a":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5001),
        Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]),
        junkString(300),
        'a'.repeat(80_000),
      ]);

    const outcomes: { status: number; what: string }[] = [];
    const resets: string[] = [];
    const one = async (): Promise<void> => {
      const path = pick(PATHS) + query();
      const method = pick(['GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']);
      const headers: Record<string, string> = {};
      for (let i = Math.floor(rand() * 4); i > 0; i--) {
        const name = pick(['X-RHN-Provisioning-MAC-0', 'X-RHN-Provisioning-MAC-1', 'X-RHN-Provisioning-MAC-9999', 'Content-Type', 'X-Forwarded-For', 'Accept']);
        const v = name === 'Content-Type' ? pick(['application/json', 'application/x-www-form-urlencoded', 'text/plain; charset=""', ';;;', 'application/json; charset=latin1']) : value();
        headers[name] = /^[\t\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
      }
      if (method !== 'GET' && rand() < 0.5) headers['Content-Type'] = 'application/json';
      const token = pick([undefined, true, true, true, 'junk', '']) as string | true | undefined;
      const from = `127.0.3.${1 + Math.floor(rand() * 4)}`;
      const body = method === 'GET' || method === 'HEAD' ? undefined : bodies();
      const what = `${method} ${path.slice(0, 120)}`;
      try {
        const r = await s.request({ method, path, headers, body, from, token });
        outcomes.push({ status: r.status, what });
      } catch (err) {
        // The server may close before reading a large body it refused (413, 431): a reset, not a crash.
        resets.push(`${what}: ${(err as Error).message}`);
      }
    };
    for (let round = 0; round < 50; round++) await Promise.all(Array.from({ length: 8 }, one));

    const rawRequests = [
      `GET ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\nX-RHN-Provisioning-MAC-0: eth0 \x0052:54\r\nConnection: close\r\n\r\n`,
      `GET ${KICKSTART_PATH}?a=%zz\x00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      `GET ${SETPXEBOOT_PATH}?action=os HTTP/1.1\r\nHost: x\r\nX-Junk: a\rb\r\nConnection: close\r\n\r\n`,
      `GET ${API_NODES_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'\x7f'.repeat(100)}\r\nConnection: close\r\n\r\n`,
      `GET ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(40_000)}\r\nConnection: close\r\n\r\n`,
      `POST ${SETPXEBOOT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\naction=os`,
      `POST ${SETPXEBOOT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\naction`,
      `POST ${SETPXEBOOT_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n`,
      `FOO ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      `PROPFIND ${KICKSTART_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      `GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      'GARBAGE\r\n\r\n',
      '\x00\x01\x02\x03',
    ];
    for (const raw of rawRequests) {
      const r = await s.raw(Buffer.from(raw, 'latin1'), '127.0.3.1');
      outcomes.push({ status: r.status, what: `raw ${JSON.stringify(raw.slice(0, 60))}` });
    }

    const bad = outcomes.filter((o) => o.status >= 500 && !(o.status === 503 && o.what.includes(KICKSTART_PATH)));
    expect(bad, JSON.stringify(bad.slice(0, 5))).to.deep.equal([]);
    expect(outcomes.length).to.be.greaterThan(300);
    expect(resets.length, resets.slice(0, 5).join('\n')).to.be.lessThan(outcomes.length / 10);
    expect(s.logs.filter((l) => l.msg === 'internal error').map((l) => JSON.stringify(l.err).slice(0, 300))).to.deep.equal([]);

    const alive = await s.request({ path: KICKSTART_PATH, from: '127.0.3.1' });
    expect(alive.status).to.be.lessThan(500);
    expect((await s.request({ path: API_NODES_PATH, token: true })).status).to.equal(200);
  });
});
