/** The human-readable summary of a run (the `--json` object is the full record). */
import type { BenchResult } from './result.js';

const MiB = 2 ** 20;

function cell(v: unknown, w: number): string {
  return String(v ?? '-').padEnd(w);
}

function mib(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

export function formatResult(r: BenchResult): string {
  const lines: string[] = [];
  const head = ['NODE', 'STATE', 'START', 'XFER', 'DONE', 'FROM FRONTEND', 'FROM PEERS', 'SENT (WIRE)', 'CPU', 'SHA256', 'REASON'];
  const w = [12, 7, 7, 7, 8, 14, 12, 12, 7, 7, 0];
  lines.push(
    head
      .map((h, i) => cell(h, w[i]!))
      .join(' ')
      .trimEnd(),
  );
  for (const n of r.nodes) {
    const row = [
      n.name,
      n.state,
      n.startSeconds === null ? '-' : `${n.startSeconds}s`,
      n.transferStartSeconds === null ? '-' : `${n.transferStartSeconds}s`,
      n.doneSeconds === null ? '-' : `${n.doneSeconds}s`,
      mib(n.bytesFromFrontend),
      mib(n.bytesFromPeers),
      n.wireBytesSent === null ? '-' : mib(n.wireBytesSent),
      n.cpuSeconds === null ? '-' : `${n.cpuSeconds}s`,
      n.sha256Match ? 'ok' : 'BAD',
      n.reason ?? '',
    ];
    lines.push(
      row
        .map((v, i) => cell(v, w[i]!))
        .join(' ')
        .trimEnd(),
    );
  }
  lines.push('');
  lines.push(
    `method ${r.method}, ${r.nodeCount} node(s), links ${r.rate}${r.lossRate ? ` with ${(r.lossRate * 100).toFixed(2)}% loss (${r.lossBy})` : ''}, image ${r.imageMb} MiB ${r.data} (F = ${r.fileBytes} bytes stored), runtime ${r.runtime}`,
  );
  lines.push(`makespan ${r.makespanSeconds} s; lower bound ${r.lowerBoundSeconds} s (${r.bound.formula}, here ${r.bound.limitedBy}); ratio ${r.ratio}`);
  lines.push(`start skew ${r.startSkewSeconds ?? '-'} s (last first report at +${r.lastStartSeconds ?? '-'} s); first transfer start to last done ${r.transferMakespanSeconds ?? '-'} s`);
  const fb = r.frontendBytes;
  lines.push(
    `frontend sent ${mib(r.frontendBytesSent)} (${r.frontendCopies} copies of F${fb ? `; seeder ${mib(fb.seeder)}, HTTP ${mib(fb.http)}, multicast ${mib(fb.multicast)}` : ''}); peers sent ${mib(r.peerBytesSent)}`,
  );
  if (r.wire) {
    const lossRule = r.lossBy === 'nftables' ? `, ${r.wire.lossRuleDroppedPackets} dropped by the loss rule` : '';
    lines.push(`on the wire (tc): frontend ${mib(r.wire.frontendBytesSent)}, nodes ${mib(r.wire.nodesBytesSent)}, ${r.wire.droppedPackets} packets dropped by the qdiscs${lossRule}`);
  }
  if (r.multicast) lines.push(`multicast: sender cap ${(r.multicast.rateCapBytesPerSec * 8e-6).toFixed(1)} Mbit/s of datagrams, ${r.multicast.chunksResent ?? '-'} chunk(s) resent`);
  lines.push(
    `CPU: frontend ${r.cpu.frontendSeconds} s, installers ${r.cpu.installersSeconds} s in all (${r.cpu.installersSystemSeconds} s of it in the kernel; max ${r.cpu.installerMaxSeconds} s); bench ${r.cpu.benchSeconds} s, everything else ${r.cpu.otherSeconds} s; CPU floor ${r.cpu.floorSeconds} s (frontend + installers / CPUs); all CPUs ${Math.round(r.cpu.machineBusyShare * 100)}% busy (${Math.round(r.cpu.machineBusyBeforeShare * 100)}% before launch); machine ${r.machine.nproc} CPUs, ${r.machine.memoryMiB} MiB, ${r.machine.kernel}`,
  );
  lines.push(
    r.ok
      ? 'every node installed, verified (SHA-256) and flipped to os; every namespace removed'
      : `NOT OK: ${[!r.allVerified && 'a target does not match the image', r.nodes.some((n) => n.state !== 'done') && 'a node did not finish', !r.cleanupOk && 'a namespace is left'].filter(Boolean).join('; ')} (finished: ${r.finished})`,
  );
  if (r.workDir) lines.push(`kept: ${r.workDir}`);
  return lines.join('\n');
}
