import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError } from '../../protocol/errors.js';
import { DataDirLock, holderAlive, processStartTime } from '../../server/lock.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tmp.js';

/** The PID of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('the data dir serve lock', () => {
  after(cleanupTmpDirs);

  it('is taken, written with PID and start time, and removed on release', () => {
    const dir = tmpDir();
    const lock = new DataDirLock(dir);
    expect(lock.acquire()).to.deep.equal({ staleFrom: undefined });
    const text = fs.readFileSync(path.join(dir, 'serve.lock'), 'utf8');
    expect(text).to.equal(`pid ${process.pid}\nstart ${processStartTime(process.pid)}\n`);
    lock.release();
    lock.release();
    expect(fs.existsSync(path.join(dir, 'serve.lock'))).to.equal(false);
    expect(fs.readdirSync(dir), 'no temporary files left').to.deep.equal([]);
  });

  it('refuses while a live process holds it, naming its PID, and leaves its lock alone', async () => {
    const dir = tmpDir();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const file = path.join(dir, 'serve.lock');
      fs.writeFileSync(file, `pid ${holder.pid}\nstart ${processStartTime(holder.pid!)}\n`);
      const lock = new DataDirLock(dir);
      let err: unknown;
      try {
        lock.acquire();
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(ConflictError);
      expect((err as Error).message).to.contain(`in use by another kickswarm serve (pid ${holder.pid})`);
      lock.release();
      expect(fs.readFileSync(file, 'utf8')).to.match(new RegExp(`^pid ${holder.pid}\\n`));
    } finally {
      holder.kill();
    }
  });

  it('takes over the lock of a process that is gone', () => {
    const dir = tmpDir();
    const gone = deadPid();
    fs.writeFileSync(path.join(dir, 'serve.lock'), `pid ${gone}\nstart 12345\n`);
    const lock = new DataDirLock(dir);
    expect(lock.acquire()).to.deep.equal({ staleFrom: gone });
    expect(fs.readFileSync(path.join(dir, 'serve.lock'), 'utf8')).to.match(new RegExp(`^pid ${process.pid}\\n`));
    lock.release();
  });

  it('takes over a lock whose PID now belongs to another process (start time differs)', () => {
    const dir = tmpDir();
    // This very process, but "started" at another time: the PID was reused.
    const h = { pid: process.pid, startTime: (processStartTime(process.pid) ?? 0) + 1 };
    expect(holderAlive(h)).to.equal(false);
    fs.writeFileSync(path.join(dir, 'serve.lock'), `pid ${h.pid}\nstart ${h.startTime}\n`);
    const lock = new DataDirLock(dir);
    expect(lock.acquire().staleFrom).to.equal(process.pid);
    lock.release();
  });

  it('takes over an unreadable lock file', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'serve.lock'), 'garbage');
    const lock = new DataDirLock(dir);
    lock.acquire();
    expect(fs.readFileSync(path.join(dir, 'serve.lock'), 'utf8')).to.match(/^pid \d+\n/);
    lock.release();
  });

  it('a second lock in the same process is refused too (one server per data dir)', () => {
    const dir = tmpDir();
    const a = new DataDirLock(dir);
    a.acquire();
    expect(() => new DataDirLock(dir).acquire()).to.throw(ConflictError, `pid ${process.pid}`);
    a.release();
  });

  it('release leaves a lock that another server took meanwhile', () => {
    const dir = tmpDir();
    const a = new DataDirLock(dir);
    a.acquire();
    fs.writeFileSync(path.join(dir, 'serve.lock'), `pid ${deadPid()}\n`);
    a.release();
    expect(fs.existsSync(path.join(dir, 'serve.lock'))).to.equal(true);
  });
});
