/**
 * Node event writes as the server makes them: queued, one transaction per
 * event-loop turn, one event per node per turn (a kickstart, a PXE config, a
 * progress report), with every node's history already at its bound, so every
 * write also pays for keeping the history bounded.
 *
 *   node --import tsx bench/events.ts [--nodes N] [--rounds R] [--batch B] [--runs K] [--json]
 *
 * Reports CPU microseconds and wall microseconds per event (median of the runs).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { Ipv4, Mac, NodeName } from '../protocol/node.js';
import { EVENTS_PER_NODE } from '../server/inventory/events.js';
import { Inventory } from '../server/inventory/store.js';

interface Run {
  events: number;
  cpuUsPerEvent: number;
  wallUsPerEvent: number;
}

function runOnce(nodes: number, rounds: number, batch: number): Run {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kickswarm-bench-ev-'));
  const inv = new Inventory(path.join(dir, 'inventory.sqlite'), { queueEvents: true });
  try {
    const name = (i: number) => `n-0-${i}` as NodeName;
    for (let i = 0; i < nodes; i++) {
      const hi = (i >> 8) & 0xff;
      const lo = i & 0xff;
      inv.addNode({ name: name(i), mac: `02:00:00:00:${hi.toString(16).padStart(2, '0')}:${lo.toString(16).padStart(2, '0')}` as Mac, ip: `10.0.${hi}.${lo}` as Ipv4, appliance: 'compute' });
    }
    for (let r = 0; r < EVENTS_PER_NODE + 20; r++) {
      for (let i = 0; i < nodes; i++) inv.recordEvent(name(i), 'fill', 'history at its bound');
      inv.flushEvents();
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (let b = 0; b < nodes; b += batch) {
        for (let i = b; i < Math.min(nodes, b + batch); i++) inv.recordEvent(name(i), 'kickstart', 'kickstart 200: served to 10.0.0.1');
        inv.flushEvents();
      }
    }
    const cpu = process.cpuUsage(cpu0);
    const events = rounds * nodes;
    return { events, cpuUsPerEvent: (cpu.user + cpu.system) / events, wallUsPerEvent: ((performance.now() - t0) * 1000) / events };
  } finally {
    inv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const program = new Command('bench-events')
  .option('--nodes <n>', 'nodes, each with a full history', '200')
  .option('--rounds <n>', 'events per node measured', '50')
  .option('--batch <n>', 'events per transaction (distinct nodes)', '20')
  .option('--runs <n>', 'runs (the median is reported)', '3')
  .option('--json', 'JSON output')
  .action((o: { nodes: string; rounds: string; batch: string; runs: string; json?: boolean }) => {
    const runs: Run[] = [];
    for (let i = 0; i < Number(o.runs); i++) runs.push(runOnce(Number(o.nodes), Number(o.rounds), Number(o.batch)));
    const out = {
      nodes: Number(o.nodes),
      batch: Number(o.batch),
      eventsPerRun: runs[0]!.events,
      cpuUsPerEvent: Math.round(median(runs.map((r) => r.cpuUsPerEvent)) * 10) / 10,
      wallUsPerEvent: Math.round(median(runs.map((r) => r.wallUsPerEvent)) * 10) / 10,
    };
    process.stdout.write(
      o.json
        ? `${JSON.stringify(out)}\n`
        : `${out.eventsPerRun} events over ${out.nodes} full histories, ${out.batch} per transaction: ${out.cpuUsPerEvent} us CPU, ${out.wallUsPerEvent} us wall per event (median of ${runs.length})\n`,
    );
  });
program.parse(process.argv.filter((a, i) => !(i === 2 && a === '--')));
