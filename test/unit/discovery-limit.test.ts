import { expect } from 'chai';
import type { Ipv4 } from '../../protocol/node.js';
import { DiscoveryLimit } from '../../server/core/discovery-limit.js';
import type { DiscoverySession } from '../../server/inventory/types.js';

const session = (o: Partial<DiscoverySession> = {}): DiscoverySession => ({ appliance: 'compute', rack: 0, firstIp: '10.1.1.1' as Ipv4, startedAt: 't0', ...o });

describe('discovery limits', () => {
  it('allows perMinute registrations at once, then one per 60/perMinute seconds', () => {
    let now = 0;
    const l = new DiscoveryLimit(() => now);
    const d = session({ perMinute: 6, maxPending: 100 });
    for (let i = 0; i < 6; i++) expect(l.take(d, i)).to.equal(undefined);
    expect(l.take(d, 6)).to.equal('more than 6 registrations a minute');
    now += 9_000;
    expect(l.take(d, 6)).to.equal('more than 6 registrations a minute');
    now += 1_000;
    expect(l.take(d, 6)).to.equal(undefined);
    expect(l.take(d, 7)).to.match(/a minute/);
  });

  it('refuses at maxPending awaiting approval; with auto-approve counts the session', () => {
    const l = new DiscoveryLimit(() => 0);
    expect(l.take(session({ maxPending: 2 }), 2)).to.equal('2 nodes already await approval (at most 2; kickswarm node approve / node remove)');
    expect(l.take(session({ maxPending: 2 }), 1)).to.equal(undefined);
    const auto = session({ startedAt: 't1', autoApprove: true, maxPending: 2 });
    expect(l.take(auto, 0)).to.equal(undefined);
    expect(l.take(auto, 0)).to.equal(undefined);
    expect(l.take(auto, 0)).to.equal('this session already registered 2 nodes (at most 2)');
    // A new session starts afresh.
    expect(l.take(session({ startedAt: 't2', autoApprove: true, maxPending: 2 }), 0)).to.equal(undefined);
  });
});
