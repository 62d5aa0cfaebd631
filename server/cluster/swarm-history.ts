/**
 * Bytes sent by the frontend and by peers over time: the picture of a swarm
 * install. A sampler reads both totals about once a second and keeps a
 * bounded series (points only when something moved, plus one a minute).
 */
export interface SwarmPoint {
  /** Unix time, seconds. */
  t: number;
  /** Bytes the frontend has sent (seeder, HTTP, multicast) since it started. */
  frontend: number;
  /** Bytes nodes got from each other (what they report from peers, less the frontend seeder's share). */
  peers: number;
}

export interface SwarmTotals {
  frontend(): Promise<{ total: number; seeder: number }>;
  /** Sum of what the nodes report having received from peers (their current installs). */
  fromPeers(): number;
}

export class SwarmHistory {
  private readonly points: SwarmPoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly totals: SwarmTotals,
    private readonly opts: { intervalMs?: number; maxPoints?: number; now?: () => number } = {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sample(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now. */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const f = await this.totals.frontend();
      const last = this.points.at(-1);
      // Totals only grow; node reports arrive at their own pace, so a sample never goes below the last one.
      const peers = Math.max(last?.peers ?? 0, this.totals.fromPeers() - f.seeder, 0);
      const t = Math.floor((this.opts.now ?? Date.now)() / 1000);
      if (last && last.frontend === f.total && last.peers === peers && t - last.t < 60) return;
      if (last && last.t === t) this.points.pop();
      this.points.push({ t, frontend: f.total, peers });
      const max = this.opts.maxPoints ?? 3600;
      if (this.points.length > max) this.points.splice(0, this.points.length - max);
    } catch {
      // a sample that cannot be taken is skipped
    } finally {
      this.busy = false;
    }
  }

  series(): SwarmPoint[] {
    return [...this.points];
  }
}
