/**
 * How many unknown MACs discovery may register: at most `perMinute` a minute
 * (a token bucket that holds one minute's worth) and at most `maxPending`
 * awaiting approval at once; with `autoApprove`, at most `maxPending` for the
 * whole session (there is nothing pending to count). Any host can make up
 * MACs, so these bound what one can make the inventory hold.
 */
import { type DiscoverySession, DISCOVERY_DEFAULTS } from '../inventory/types.js';

export class DiscoveryLimit {
  private tokens = 0;
  private last = 0;
  private session = '';
  private registered = 0;

  constructor(private readonly clock: () => number = () => Date.now()) {}

  /**
   * Why one more registration must be refused now (undefined: it may go
   * ahead, and is counted). `pending` is how many nodes await approval.
   */
  take(d: DiscoverySession, pending: number): string | undefined {
    const perMinute = d.perMinute ?? DISCOVERY_DEFAULTS.perMinute;
    const maxPending = d.maxPending ?? DISCOVERY_DEFAULTS.maxPending;
    const now = this.clock();
    if (this.session !== d.startedAt) {
      this.session = d.startedAt;
      this.tokens = perMinute;
      this.registered = 0;
      this.last = now;
    }
    this.tokens = Math.min(perMinute, this.tokens + ((now - this.last) / 60_000) * perMinute);
    this.last = now;
    if (d.autoApprove === true ? this.registered >= maxPending : pending >= maxPending) {
      return d.autoApprove === true
        ? `this session already registered ${this.registered} nodes (at most ${maxPending})`
        : `${pending} nodes already await approval (at most ${maxPending}; kickswarm node approve / node remove)`;
    }
    if (this.tokens < 1 - 1e-9) return `more than ${perMinute} registrations a minute`;
    this.tokens = Math.max(0, this.tokens - 1);
    this.registered++;
    return undefined;
  }
}
