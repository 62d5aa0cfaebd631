import { expect } from 'chai';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, kickswarm } from '../helpers/cli.js';
import { skipBecause } from '../helpers/skip.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

const MAIN = path.join(REPO, 'server/main.ts');
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

/** Runs `kickswarm serve` as nobody, with the capabilities setpriv grants (what the unit's User= and AmbientCapabilities= do). */
function serveAsNobody(dataDir: string, caps: string[], args: string[]): ChildProcess {
  return spawn('/usr/bin/setpriv', [...NOBODY, ...caps, process.execPath, '--import', 'tsx', MAIN, '--data-dir', dataDir, 'serve', ...args], {
    cwd: REPO,
    env: { ...process.env, HOME: '/nonexistent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function outcome(child: ChildProcess): Promise<{ serving: boolean; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    let out = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('kickswarm serving')) {
        child.once('exit', (code) => resolve({ serving: true, stderr, code }));
        child.kill('SIGTERM');
      }
    });
    child.once('exit', (code) => {
      if (!out.includes('kickswarm serving')) resolve({ serving: false, stderr, code });
    });
  });
}

describe('kickswarm systemd-unit', function () {
  this.timeout(300_000);
  after(cleanupTmpDirs);

  it("prints a unit with this installation's paths that systemd accepts", function () {
    const dir = tmpDir();
    const r = kickswarm(path.join(dir, 'state'), ['systemd-unit', '--http-port', '8080']);
    expect(r.code, r.stderr).to.equal(0);
    const unit = r.stdout;
    expect(unit).to.contain(`ExecStart=${process.execPath} ${path.join(REPO, 'bin/kickswarm.js')} --data-dir ${path.join(dir, 'state')} serve --http-port 8080 --tftp-port 69 --log-format json\n`);
    for (const line of ['Type=simple', 'Restart=on-failure', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'User=kickswarm', 'NoNewPrivileges=yes']) {
      expect(unit).to.match(new RegExp(`^${line}$`, 'm'));
    }
    expect(fs.existsSync(path.join(dir, 'state')), 'printing a unit makes no data dir').to.equal(false);
    expect(kickswarm(dir, ['systemd-unit', '--user', 'Bad User']).code).to.equal(2);
    expect(kickswarm(dir, ['systemd-unit', '--tftp-port', '99999']).code).to.equal(2);
    if (!fs.existsSync('/usr/bin/systemd-analyze')) skipBecause(this, 'systemd-analyze (Debian systemd) is not installed');
    const file = path.join(dir, 'kickswarm.service');
    fs.writeFileSync(file, unit.replace(/^User=.*$/m, 'User=root').replace(/^Group=.*$/m, 'Group=root'));
    const v = spawnSync('/usr/bin/systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(v.status, v.stderr).to.equal(0);
    expect(v.stderr).not.to.match(/kickswarm\.service:\d+:/);
  });

  it('the capability it grants is the one serve needs for TFTP port 69 without root', async function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'needs root to switch to an unprivileged user');
    if (!fs.existsSync('/usr/bin/setpriv')) skipBecause(this, 'setpriv (util-linux) is not installed');
    const parent = tmpDir();
    fs.chmodSync(parent, 0o755);
    const dataDir = path.join(parent, 'data');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.chownSync(dataDir, 65534, 65534);
    // A loopback address of its own, so port 69 cannot clash with anything else on the machine.
    const args = ['--listen', '127.69.0.1', '--http-port', '0', '--tftp-port', '69', '--log-level', 'warn'];

    const without = await outcome(serveAsNobody(dataDir, [], args));
    expect(without.serving).to.equal(false);
    expect(without.code).to.equal(1);
    expect(without.stderr).to.match(/^kickswarm: cannot listen for TFTP on udp 127\.69\.0\.1:69: ports below 1024 need root or CAP_NET_BIND_SERVICE .*\(EACCES\)$/m);

    const withCap = await outcome(serveAsNobody(dataDir, ['--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service'], args));
    expect(withCap.serving, withCap.stderr).to.equal(true);
    expect(withCap.code).to.equal(0);
  });
});
