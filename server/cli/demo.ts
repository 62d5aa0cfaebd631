/** `kickswarm demo`: a whole-cluster reinstall on this machine, watched live. */
import type { Command } from 'commander';
import { InvalidInputError } from '../../protocol/errors.js';
import type { DemoMethod, DemoSummary } from '../demo/run.js';
import type { CliContext, CommandModule } from './context.js';
import { humanBytes, humanSeconds, json, table } from './format.js';
import { nodeStatus } from '../cluster/status.js';
import { barView, lineView, type ProgressView } from '../cluster/progress.js';
import type { NodeRecord } from '../inventory/types.js';

function num(flag: string, v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new InvalidInputError(`${flag} must be a number, not ${JSON.stringify(v.slice(0, 40))}`);
  return Number(v);
}

export function formatDemoSummary(s: DemoSummary): string {
  const rows = s.nodes.map((n) => [
    n.name,
    n.state,
    humanSeconds(n.seconds),
    humanBytes(n.bytesFromFrontend),
    humanBytes(n.bytesFromPeers),
    n.sha256Match ? 'yes' : 'NO',
    n.bootAction,
    n.reason ?? '',
  ]);
  return [
    table(['NODE', 'STATE', 'TIME', 'FROM FRONTEND', 'FROM PEERS', 'SHA256 OK', 'BOOT', 'REASON'], rows),
    '',
    `method ${s.method}: ${s.nodes.length} node(s), image ${humanBytes(s.imageBytes)} (${humanBytes(s.storedBytes)} stored)`,
    `makespan ${humanSeconds(s.makespanSeconds)}; the frontend sent ${humanBytes(s.frontendBytesSent)} (${(s.frontendBytesSent / Math.max(1, s.storedBytes)).toFixed(2)} copies), peers sent ${humanBytes(s.peerBytesSent)}`,
    s.ok ? 'every node installed, verified and flipped to os' : 'NOT every node finished: see the table' + (s.workDir ? ` and the logs in ${s.workDir}` : ' (rerun with --keep to inspect the logs)'),
  ].join('\n');
}

export const registerDemoCommand: CommandModule = (program: Command, ctx: CliContext) => {
  program
    .command('demo')
    .description('reinstall a simulated cluster on this machine: frontend, N nodes on 127.0.1.x, real installers')
    .option('--nodes <n>', 'how many nodes', '4')
    .option('--method <method>', 'how nodes get the image (one of: torrent, multicast, http)', 'torrent')
    .option('--image-mb <m>', 'size of the synthetic disk image in MiB', '64')
    .option('--loss <p>', 'multicast only: fraction of datagrams each node drops', '0')
    .option('--linger <s>', 'seconds nodes keep seeding after they finish', '3')
    .option('--timeout <s>', 'give up after this many seconds', '600')
    .option('--keep', 'keep the temporary folder (data dir, targets, logs)')
    .option('--json', 'print only the summary, as JSON')
    .option('--keep-serving', 'keep the simulated frontend and its dashboard up after the install, until Ctrl-C')
    .action(async (o: { nodes: string; method: string; imageMb: string; loss: string; linger: string; timeout: string; keep?: boolean; json?: boolean; keepServing?: boolean }) => {
      const view: ProgressView | undefined = o.json ? undefined : ctx.isTTY ? barView() : lineView({ out: ctx.out });
      const tick = (nodes: NodeRecord[], t: number) =>
        view?.update(
          nodes.map((n) => ({ name: n.name, row: nodeStatus(n, undefined, new Date(), 60) })),
          t,
        );
      // The demo runs a whole frontend and its nodes: loaded here, not by every other command.
      const { runDemo } = await import('../demo/run.js');
      const summary = await runDemo({
        nodes: num('--nodes', o.nodes),
        method: o.method as DemoMethod,
        imageMb: num('--image-mb', o.imageMb),
        loss: num('--loss', o.loss),
        linger: num('--linger', o.linger),
        timeoutSeconds: num('--timeout', o.timeout),
        keep: Boolean(o.keep),
        onLine: o.json ? undefined : (l) => ctx.out(l),
        onProgress: view ? tick : undefined,
        ...(o.keepServing
          ? {
              keepServing: () =>
                new Promise<void>((resolve) => {
                  process.once('SIGINT', () => resolve());
                  process.once('SIGTERM', () => resolve());
                }),
              onDone: (s: DemoSummary) => {
                view?.stop();
                ctx.out(o.json ? json({ ok: s.ok, makespanSeconds: s.makespanSeconds }) : formatDemoSummary(s));
              },
            }
          : {}),
      });
      view?.stop();
      if (o.keepServing) {
        if (!summary.ok) ctx.setExitCode(1);
        return;
      }
      if (o.json) {
        ctx.out(
          json({
            nodes: summary.nodes,
            makespanSeconds: summary.makespanSeconds,
            imageBytes: summary.imageBytes,
            frontendBytesSent: summary.frontendBytesSent,
            peerBytesSent: summary.peerBytesSent,
            method: summary.method,
            storedBytes: summary.storedBytes,
            ok: summary.ok,
          }),
        );
      } else {
        ctx.out(formatDemoSummary(summary));
      }
      if (!summary.ok) ctx.setExitCode(1);
    });
};
