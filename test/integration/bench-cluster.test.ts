import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { PACKAGE_ROOT } from '../../server/datadir.js';
import { skipBecause } from '../helpers/skip.js';
import { namespacePids } from '../../bench/cluster/netns.js';
import { until } from '../helpers/until.js';

interface BenchJson {
  ok: boolean;
  cleanupOk: boolean;
  nodes: { name: string; state: string; sha256Match: boolean; bootAction: string }[];
  makespanSeconds: number;
  lowerBoundSeconds: number;
  ratio: number;
  frontendBytesSent: number;
  fileBytes: number;
}

function netnsUsable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    execFileSync('tc', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Namespaces and temp folders a bench:cluster process with this pid made. */
function leftovers(pid: number): string[] {
  const prefix = `ksb-${pid}-`;
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
  const dirs = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(prefix));
  return [...ns, ...dirs];
}

function bench(args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', path.join(PACKAGE_ROOT, 'bench/cluster.ts'), ...args], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * The bench gives up by itself after `--timeout` seconds from the launch and
 * says what did not finish; before the launch it waits at most 60 s for the
 * frontend and about 20 s for its seeding. The test allows all of that plus
 * building the image and the namespaces, so on a busy machine it is the
 * bench's own report that fails the test, never a bare mocha timeout.
 */
const BENCH_TIMEOUT_S = 150;

describe('bench:cluster on network namespaces (smoke)', function () {
  this.timeout((BENCH_TIMEOUT_S + 60 + 20 + 90) * 1000);

  before(function () {
    if (!netnsUsable()) skipBecause(this, "building namespaces, veths and qdiscs needs root and iproute2's `ip netns` and `tc`");
  });

  it('installs 3 nodes over the swarm on 100mbit links, all verified, and leaves no namespace behind', async () => {
    const child = bench(['--nodes', '3', '--method', 'torrent', '--rate', '100mbit', '--image-mb', '16', '--timeout', String(BENCH_TIMEOUT_S), '--json']);
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, err.slice(-3000)).to.equal(0);
    const r = JSON.parse(out) as BenchJson;
    expect(r.nodes).to.have.length(3);
    for (const n of r.nodes) expect([n.name, n.state, n.sha256Match, n.bootAction]).to.deep.equal([n.name, 'done', true, 'os']);
    expect(r.ok).to.equal(true);
    expect(r.cleanupOk).to.equal(true);
    expect(r.frontendBytesSent).to.be.greaterThan(0);
    expect(r.makespanSeconds).to.be.greaterThan(r.lowerBoundSeconds);
    expect(leftovers(child.pid!)).to.deep.equal([]);
  });

  it('removes its namespaces and processes on Ctrl-C in the middle of a run', async () => {
    const child = bench(['--nodes', '2', '--method', 'http', '--rate', '10mbit', '--image-mb', '16']);
    let err = '';
    let sent = false;
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    // In the middle of a run: both installers are running in their node namespaces.
    const nodeNs = [0, 1].map((i) => `ksb-${child.pid}-n${i}`);
    await until(
      () => `the launch; bench said:\n${err.slice(-2000)}`,
      () => /launching 2 installer/.test(err),
      80_000,
      100,
    );
    await until(
      () => `installers running in ${nodeNs.join(', ')}; bench said:\n${err.slice(-2000)}`,
      () => child.exitCode === null && nodeNs.every((ns) => namespacePids(ns).length > 0),
      30_000,
      100,
    );
    sent = child.kill('SIGINT');
    const code = await exited;
    expect(sent, err.slice(-2000)).to.equal(true);
    expect(code).to.equal(130);
    expect(leftovers(child.pid!)).to.deep.equal([]);
  });
});
