import fs from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import { freePort } from '../../bench/lib/ports.js';

describe('bench freePort', () => {
  it('picks a port below the ephemeral range that a server can then listen on', async () => {
    const ephemeral = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    for (let i = 0; i < 5; i++) {
      const port = await freePort();
      expect(port).to.be.at.least(10_000).and.below(ephemeral);
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '0.0.0.0', resolve);
      });
      await new Promise((r) => s.close(r));
    }
  });
});
