/**
 * Live install progress of many nodes: one bar per node (state, percent, rate)
 * and one overall bar on a terminal; plain lines on state changes (and every
 * few seconds) otherwise. Fed with inventory snapshots.
 */
import cliProgress from 'cli-progress';
import type { NodeRecord } from '../inventory/types.js';
import { humanBytes } from './format.js';

const TERMINAL = new Set(['done', 'failed']);

export class InstallProgressView {
  private multi: cliProgress.MultiBar | undefined;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private overall: cliProgress.SingleBar | undefined;
  private readonly lastState = new Map<string, string>();
  private lastLineAt = 0;

  constructor(private readonly io: { isTTY: boolean; out: (s: string) => void; linesEverySeconds?: number }) {}

  update(nodes: NodeRecord[], elapsedSeconds: number): void {
    if (this.io.isTTY) this.updateBars(nodes);
    else this.updateLines(nodes, elapsedSeconds);
  }

  private updateBars(nodes: NodeRecord[]): void {
    if (!this.multi) {
      this.multi = new cliProgress.MultiBar(
        { format: ' {name} |{bar}| {percentage}% {state} {rate}', barsize: 30, hideCursor: true, clearOnComplete: false, autopadding: true },
        cliProgress.Presets.shades_classic,
      );
    }
    let sum = 0;
    for (const n of nodes) {
      const i = n.install;
      const pct = i?.state === 'done' ? 100 : i?.bytesTotal ? Math.floor((100 * (i.bytesDone ?? 0)) / i.bytesTotal) : 0;
      sum += pct;
      const payload = { name: n.name.padEnd(14), state: (i?.state ?? 'waiting').padEnd(11), rate: i?.rate ? `${humanBytes(i.rate)}/s` : '' };
      let bar = this.bars.get(n.name);
      if (!bar) {
        bar = this.multi.create(100, pct, payload);
        this.bars.set(n.name, bar);
      }
      bar.update(pct, payload);
    }
    const done = nodes.filter((n) => n.install && TERMINAL.has(n.install.state)).length;
    const payload = { name: 'overall'.padEnd(14), state: `${done}/${nodes.length} finished`.padEnd(11), rate: '' };
    this.overall ??= this.multi.create(100, 0, payload);
    this.overall.update(nodes.length ? Math.floor(sum / nodes.length) : 0, payload);
  }

  private updateLines(nodes: NodeRecord[], elapsed: number): void {
    for (const n of nodes) {
      const s = n.install?.state ?? 'waiting';
      if (this.lastState.get(n.name) !== s) {
        this.lastState.set(n.name, s);
        this.io.out(`[${elapsed.toFixed(1)}s] ${n.name}: ${s}${n.install?.reason ? ` (${n.install.reason})` : ''}`);
      }
    }
    const every = this.io.linesEverySeconds ?? 5;
    if (elapsed - this.lastLineAt >= every) {
      this.lastLineAt = elapsed;
      const total = nodes.reduce((a, n) => a + (n.install?.bytesTotal ?? 0), 0);
      const done = nodes.reduce((a, n) => a + (n.install?.state === 'done' ? (n.install.bytesTotal ?? 0) : (n.install?.bytesDone ?? 0)), 0);
      const finished = nodes.filter((n) => n.install && TERMINAL.has(n.install.state)).length;
      if (total > 0) this.io.out(`[${elapsed.toFixed(1)}s] ${finished}/${nodes.length} finished, ${Math.floor((100 * done) / total)}% of bytes written`);
    }
  }

  stop(): void {
    this.multi?.stop();
    this.multi = undefined;
  }
}
