import { expect } from 'chai';
import { runFuzz } from '../../bench/lib/fuzz/run.js';

/**
 * The fuzz suite's fixed-seed part: a short run of `npm run fuzz` (TFTP
 * datagrams, HTTP requests against every route, BitTorrent wire messages to
 * the seeder and a node proxy) against real processes. The same seed sends
 * the same inputs, so a failure here replays with `npm run fuzz -- --seed`.
 */
describe('fuzz suite (fixed seed)', () => {
  it('crashes nothing, answers no 5xx, holds memory and descriptors bounded, and still serves', async function () {
    this.timeout(240_000);
    const r = await runFuzz({ seconds: 15, seed: 20261203 });
    const summary = JSON.stringify(r, null, 1);
    for (const [name, p] of Object.entries(r.processes)) {
      expect(p.crashed, `${name} crashed: ${summary}`).to.equal(false);
      expect(p.peakRssMb, `${name} peak RSS`).to.be.below(600);
      expect(p.peakFds, `${name} peak open descriptors`).to.be.below(p.baselineFds + 400);
      expect(p.endFds, `${name} descriptors left open after the run`).to.be.at.most(p.baselineFds + 10);
    }
    expect(r.serverErrors, summary).to.equal(0);
    expect(r.stillServes, summary).to.equal(true);
    for (const t of r.targets) expect(t.inputs, `${t.target} inputs`).to.be.above(100);
  });
});
