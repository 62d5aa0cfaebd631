import { expect } from 'chai';
import {
  BusyError,
  ConflictError,
  CorruptImageError,
  ForbiddenError,
  InvalidInputError,
  KickswarmError,
  NotFoundError,
  TemplateError,
  UnauthorizedError,
  UnavailableError,
} from '../../protocol/errors.js';
import { bearerToken, tokenMatches } from '../../server/http/auth.js';
import { errorAnswer } from '../../server/http/errors.js';
import { BusyGauge } from '../../server/http/limiter.js';
import { provisioningMacs } from '../../server/http/requester.js';
import { parseOmfNodeName } from '../../server/http/routes/omf.js';
import { actionFromParams } from '../../server/http/routes/setpxeboot.js';
import { until } from '../helpers/until.js';
import { xmlElement, xmlEscape } from '../../server/http/xml.js';

describe('http: X-RHN-Provisioning-MAC headers', () => {
  it('reads "<device> <mac>" and bare MACs in header order, normalised', () => {
    const macs = provisioningMacs({
      'x-rhn-provisioning-mac-1': 'eth1 52-54-00-00-00-02',
      'x-rhn-provisioning-mac-0': 'eth0 52:54:00:00:00:01',
      'x-rhn-provisioning-mac-10': '525400000003',
      host: 'frontend',
    });
    expect(macs.map((m) => [m.header, m.device, m.mac])).to.deep.equal([
      ['X-RHN-Provisioning-MAC-0', 'eth0', '52:54:00:00:00:01'],
      ['X-RHN-Provisioning-MAC-1', 'eth1', '52:54:00:00:00:02'],
      ['X-RHN-Provisioning-MAC-10', undefined, '52:54:00:00:00:03'],
    ]);
  });

  it('is empty without headers', () => {
    expect(provisioningMacs({ host: 'x' })).to.deep.equal([]);
  });

  it('skips interfaces it cannot read when another parses', () => {
    const macs = provisioningMacs({
      'x-rhn-provisioning-mac-0': 'ib0 80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:0d:01',
      'x-rhn-provisioning-mac-1': 'eth0 52:54:00:00:00:01',
    });
    expect(macs.map((m) => m.mac)).to.deep.equal(['52:54:00:00:00:01']);
  });

  it('names the first header when none parses', () => {
    expect(() => provisioningMacs({ 'x-rhn-provisioning-mac-3': 'eth0 zz', 'x-rhn-provisioning-mac-2': 'a b c' })).to.throw(InvalidInputError, 'X-RHN-Provisioning-MAC-2');
  });
});

describe('http: BusyGauge (when kickstart.cgi answers 503)', () => {
  const nextTurn = () => new Promise<void>((r) => setImmediate(r));
  const block = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // the thread is busy
    }
  };
  /** Polls the gauge until a window after the current one has completed; resolves with its verdict. */
  const nextWindow = async (g: BusyGauge): Promise<string | undefined> => {
    const after = g.windows;
    await until('the next measuring window', () => g.loopDelayMs() >= 0 && g.windows > after);
    return g.busy();
  };

  it('counts open requests, is busy only beyond maxInFlight, and ends each once (idempotent)', () => {
    const g = new BusyGauge({ maxInFlight: 2, maxLoopDelayMs: 100 });
    const a = g.enter();
    const b = g.enter();
    expect(g.busy()).to.equal(undefined);
    const c = g.enter();
    expect(g.busy()).to.equal('3 kickstart requests open, at most 2');
    c();
    c();
    expect(g.inFlight).to.equal(2);
    expect(g.busy()).to.equal(undefined);
    a();
    b();
    expect(g.inFlight).to.equal(0);
  });

  it('is busy while every turn of the event loop is long, and not after the loop keeps up again', async () => {
    const g = new BusyGauge({ maxInFlight: 4, maxLoopDelayMs: 30, windowMs: 200 });
    expect(g.loopDelayMs(), 'nothing measured yet').to.equal(0);
    expect(g.windows).to.equal(0);
    // An idle window (polled for: another process may keep this machine busy for a while).
    await until('an idle window', async () => (await nextWindow(g)) === undefined && g.loopDelayMs() < 15);
    // 300 ms of 60 ms turns: the thread is overloaded for a whole window.
    const windowsBefore = g.windows;
    const until300 = performance.now() + 300;
    while (performance.now() < until300) {
      block(60);
      await nextTurn();
    }
    expect(g.loopDelayMs()).to.be.within(35, 70);
    expect(g.windows, 'the overloaded window has completed').to.equal(windowsBefore + 1);
    expect(g.busy()).to.match(/^event loop \d+ ms late, at most 30$/);
    await until('a quiet window after the load', async () => (await nextWindow(g)) === undefined);
  });

  it('does not count a single stall', async () => {
    const g = new BusyGauge({ maxInFlight: 4, maxLoopDelayMs: 30, windowMs: 300 });
    g.loopDelayMs();
    await nextTurn();
    block(120);
    expect(await nextWindow(g), 'the window with one 120 ms stall').to.equal(undefined);
  });

  it('refuses a non-positive maxInFlight or maxLoopDelayMs', () => {
    expect(() => new BusyGauge({ maxInFlight: 0, maxLoopDelayMs: 100 })).to.throw(RangeError);
    expect(() => new BusyGauge({ maxInFlight: 1.5, maxLoopDelayMs: 100 })).to.throw(RangeError);
    expect(() => new BusyGauge({ maxInFlight: 1, maxLoopDelayMs: 0 })).to.throw(RangeError);
  });
});

describe('http: error mapping', () => {
  const cases: [KickswarmError, number][] = [
    [new InvalidInputError('x'), 400],
    [new UnauthorizedError(), 401],
    [new ForbiddenError('x'), 403],
    [new NotFoundError('x'), 404],
    [new ConflictError('x'), 409],
    [new CorruptImageError('x', 2), 422],
    [new TemplateError('t.hbs', 3, 'x'), 500],
    [new UnavailableError('x'), 503],
    [new KickswarmError('internal', 'secret'), 500],
  ];
  for (const [err, status] of cases) {
    it(`${err.code} -> ${status}`, () => {
      const a = errorAnswer(err);
      expect(a.status).to.equal(status);
      expect(a.code).to.equal(err.code);
    });
  }

  it('busy -> 503 with Retry-After', () => {
    expect(errorAnswer(new BusyError('busy', 11))).to.deep.include({ status: 503, headers: { 'Retry-After': '11' } });
  });

  it('keeps exposed 4xx http errors, hides everything else behind a generic 500', () => {
    expect(errorAnswer(Object.assign(new Error('too big'), { status: 413, expose: true }))).to.deep.include({ status: 413, code: 'too_large', message: 'too big' });
    expect(errorAnswer(Object.assign(new Error('hidden'), { status: 418, expose: false }))).to.deep.include({ status: 418, message: 'HTTP 418' });
    expect(errorAnswer(new Error('db path /secret'))).to.deep.equal({ status: 500, code: 'internal', message: 'internal error', headers: {} });
    expect(errorAnswer(Object.assign(new Error('x'), { status: 502 })).status).to.equal(500);
    expect(errorAnswer('a string').status).to.equal(500);
    expect(errorAnswer(new KickswarmError('internal', 'secret')).message).to.equal('internal error');
  });
});

describe('http: bearer tokens', () => {
  it('parses the Bearer scheme only', () => {
    expect(bearerToken('Bearer abc')).to.equal('abc');
    expect(bearerToken('bearer  abc ')).to.equal('abc');
    expect(bearerToken('Basic abc')).to.equal(undefined);
    expect(bearerToken('Bearer a b')).to.equal(undefined);
    expect(bearerToken(undefined)).to.equal(undefined);
  });

  it('matches exactly, never an empty expected token', () => {
    expect(tokenMatches('s3cret', 's3cret')).to.equal(true);
    expect(tokenMatches('s3cret', 's3cre')).to.equal(false);
    expect(tokenMatches('s3cret', 's3cretx')).to.equal(false);
    expect(tokenMatches('', '')).to.equal(false);
  });
});

describe('http: OMF and ROCKS input', () => {
  it('takes node names and the first label of FQDNs', () => {
    expect(parseOmfNodeName('node1-2')).to.equal('node1-2');
    expect(parseOmfNodeName('Node1-2.sb8.orbit-lab.org')).to.equal('node1-2');
    expect(() => parseOmfNodeName(undefined)).to.throw(InvalidInputError, 'missing node');
    expect(() => parseOmfNodeName('.x')).to.throw(InvalidInputError);
    expect(() => parseOmfNodeName('a/b.c')).to.throw(InvalidInputError);
  });

  it('reads the action of ROCKS params', () => {
    expect(actionFromParams('{"action":"os"}')).to.equal('os');
    expect(() => actionFromParams('{"action":"reboot"}')).to.throw(InvalidInputError, 'unknown boot action');
    expect(() => actionFromParams('{"x":1}')).to.throw(InvalidInputError, 'no "action"');
    expect(() => actionFromParams('{')).to.throw(InvalidInputError, 'not JSON');
    expect(() => actionFromParams('null')).to.throw(InvalidInputError);
  });

  it('escapes XML and drops characters XML cannot carry', () => {
    expect(xmlEscape(`<a href="x">&'\u0000\u0007ok`)).to.equal('&lt;a href=&quot;x&quot;&gt;&amp;&apos;ok');
    expect(xmlElement('node', { name: 'a"b', image: undefined })).to.equal('<node name="a&quot;b"/>');
  });
});
