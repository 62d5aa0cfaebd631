import { expect } from 'chai';
import { type ChildProcess, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { REPO, kickswarm, kickswarmSpawn } from '../helpers/cli.js';
import { skipBecause } from '../helpers/skip.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const LOOPBACK = ['serve', '--listen', '127.0.0.1', '--http-port', '0', '--tftp-port', '0', '--log-level', 'warn'];

/** Resolves with the child's stdout once it prints the serving line. */
function serving(child: ChildProcess, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/kickswarm serving /.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
}

/** SIGTERM; resolves with the exit code, or the signal's name when it killed the process. */
function stop(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.kill('SIGTERM');
  });
}

/** A failed serve: exit 1, exactly one line on stderr (no stack), no serving line. */
function expectOneLineFailure(r: { code: number; stdout: string; stderr: string }, re: RegExp): void {
  expect(r.code, r.stderr).to.equal(1);
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
  expect(lines, r.stderr).to.have.length(1);
  expect(lines[0]).to.match(re);
  expect(r.stderr).not.to.match(/^\s+at /m);
  expect(r.stdout).not.to.contain('kickswarm serving');
}

describe('kickswarm serve fails fast', function () {
  this.timeout(300_000);
  after(cleanupTmpDirs);

  it('on an HTTP port in use: one line, exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = kickswarm(tmpDir(), ['serve', '--listen', '127.0.0.1', '--http-port', String(port), '--tftp-port', '0']);
      expectOneLineFailure(r, new RegExp(`^kickswarm: cannot listen for HTTP on tcp 127\\.0\\.0\\.1:${port}: .*\\(EADDRINUSE\\); choose another with --http-port$`));
    } finally {
      blocker.close();
    }
  });

  it('on a TFTP port in use: one line, exit 1, and the HTTP port it had bound is free again', async () => {
    const blocker = dgram.createSocket('udp4');
    await new Promise<void>((r) => blocker.bind(0, '127.0.0.1', r));
    const port = blocker.address().port;
    try {
      const dir = tmpDir();
      const r = kickswarm(dir, ['serve', '--listen', '127.0.0.1', '--http-port', '0', '--tftp-port', String(port)]);
      expectOneLineFailure(r, new RegExp(`^kickswarm: cannot listen for TFTP on udp 127\\.0\\.0\\.1:${port}: .*\\(EADDRINUSE\\); choose another with --tftp-port$`));
      expect(fs.existsSync(path.join(dir, 'serve.lock')), 'the lock is released').to.equal(false);
    } finally {
      blocker.close();
    }
  });

  it('on a BitTorrent peer port in use (swarm.peerPort)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const dir = tmpDir();
      fs.writeFileSync(path.join(dir, 'kickswarm.yaml'), `swarm:\n  peerPort: ${port}\n`);
      const r = kickswarm(dir, LOOPBACK);
      expectOneLineFailure(r, new RegExp(`^kickswarm: cannot listen for BitTorrent peers on tcp port ${port}: .*EADDRINUSE`));
    } finally {
      blocker.close();
    }
  });

  it('on a multicast interface that is not an address of this machine', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'kickswarm.yaml'), 'multicast:\n  interface: 192.0.2.77\n');
    const r = kickswarm(dir, LOOPBACK);
    expectOneLineFailure(r, /^kickswarm: cannot listen for multicast on interface 192\.0\.2\.77: the address is not one of this machine \(EADDRNOTAVAIL\)/);
  });

  it('on a listen address that is not one of this machine', () => {
    const r = kickswarm(tmpDir(), ['serve', '--listen', '192.0.2.78', '--http-port', '0', '--tftp-port', '0']);
    expectOneLineFailure(r, /^kickswarm: cannot listen for HTTP on tcp 192\.0\.2\.78:0: the address is not one of this machine \(EADDRNOTAVAIL\)/);
  });

  it('on a data dir path that cannot be a directory', () => {
    const file = path.join(tmpDir(), 'a-file');
    fs.writeFileSync(file, '');
    const r = kickswarm(path.join(file, 'data'), LOOPBACK);
    expectOneLineFailure(r, /^kickswarm: data dir .*a-file\/data cannot be used: ENOTDIR$/);
  });

  it('on a data dir it cannot write', function () {
    const parent = tmpDir();
    fs.chmodSync(parent, 0o755);
    const dir = path.join(parent, 'data');
    fs.mkdirSync(dir, { mode: 0o755 });
    let r: { code: number; stdout: string; stderr: string };
    if (process.getuid?.() === 0) {
      // root writes anywhere: run the CLI as nobody, as a service user without rights to the dir would.
      if (!fs.existsSync('/usr/bin/setpriv')) skipBecause(this, 'setpriv (util-linux) is needed to drop root');
      const s = spawnSync(
        '/usr/bin/setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', path.join(REPO, 'server/main.ts'), '--data-dir', dir, ...LOOPBACK],
        {
          cwd: REPO,
          encoding: 'utf8',
          env: { ...process.env, HOME: '/nonexistent' },
          timeout: 60_000,
        },
      );
      r = { code: s.status ?? -1, stdout: s.stdout, stderr: s.stderr };
    } else {
      fs.chmodSync(dir, 0o555);
      r = kickswarm(dir, LOOPBACK);
    }
    expectOneLineFailure(r, /^kickswarm: data dir .*\/data is not writable: EACCES/);
  });

  it('on a data dir another serve holds (naming its PID); a stale lock is taken over', async () => {
    const dir = tmpDir();
    const first = kickswarmSpawn(dir, LOOPBACK);
    try {
      const line = await serving(first);
      const lock = fs.readFileSync(path.join(dir, 'serve.lock'), 'utf8');
      expect(lock).to.match(new RegExp(`^pid ${first.pid}\\n`));
      const second = kickswarm(dir, LOOPBACK);
      const inUse = new RegExp(`^kickswarm: data dir .* is in use by another kickswarm serve \\(pid ${first.pid}\\); stop it first, or use another --data-dir$`);
      expectOneLineFailure(second, inUse);
      // The lock is checked before the ports: the same command line again names the holder, not its port.
      const ports = /\(HTTP (\d+), TFTP (\d+)\)/.exec(line);
      expect(ports, line).to.not.equal(null);
      const again = kickswarm(dir, ['serve', '--listen', '127.0.0.1', '--http-port', ports![1]!, '--tftp-port', ports![2]!]);
      expectOneLineFailure(again, inUse);
      // Admin commands are not servers: they work beside it.
      expect(kickswarm(dir, ['node', 'list']).code).to.equal(0);
    } finally {
      expect(await stop(first)).to.equal(0);
    }
    expect(fs.existsSync(path.join(dir, 'serve.lock')), 'a clean stop removes the lock').to.equal(false);

    // A server killed with SIGKILL leaves its lock behind; the next one takes it over.
    const killed = kickswarmSpawn(dir, LOOPBACK);
    await serving(killed);
    await new Promise((r) => {
      killed.once('exit', r);
      killed.kill('SIGKILL');
    });
    expect(fs.existsSync(path.join(dir, 'serve.lock'))).to.equal(true);
    const next = kickswarmSpawn(dir, ['serve', '--listen', '127.0.0.1', '--http-port', '0', '--tftp-port', '0', '--log-level', 'warn', '--log-format', 'json']);
    let stderr = '';
    next.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await serving(next);
      expect(fs.readFileSync(path.join(dir, 'serve.lock'), 'utf8')).to.match(new RegExp(`^pid ${next.pid}\\n`));
      const warning = stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; pid?: number });
      expect(warning.find((l) => /took over the serve lock/.test(l.msg))?.pid).to.equal(killed.pid);
    } finally {
      const code = await stop(next);
      expect(code, stderr).to.equal(0);
    }
  });
});
