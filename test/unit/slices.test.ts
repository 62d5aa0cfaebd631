import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { BusyError } from '../../protocol/errors.js';
import type { NodeName } from '../../protocol/node.js';
import { checkProfiles, checkProfilesInSlices } from '../../server/render/check.js';
import { saveEdit } from '../../server/render/edit.js';
import { Serial, runInSlices, runNow } from '../../server/slices.js';
import { dataDirWith, node, removeDir, sampleEnv } from '../fixtures/render/sample.js';

/** A job of `steps` steps of about `stepMs` each, returning how many ran. */
function* busyJob(steps: number, stepMs: number): Generator<void, number> {
  let n = 0;
  for (let i = 0; i < steps; i++) {
    const until = performance.now() + stepMs;
    while (performance.now() < until) {
      // a synchronous render
    }
    n++;
    yield;
  }
  return n;
}

describe('slices: long jobs that let the event loop through', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('runNow runs a job to its end; runInSlices gives the same result and lets timers fire meanwhile', async () => {
    expect(runNow(busyJob(5, 1))).to.equal(5);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      expect(await runInSlices(busyJob(100, 2), 10)).to.equal(100);
    } finally {
      clearInterval(timer);
    }
    // 200 ms of work in 10 ms slices: the loop ran between them many times.
    expect(ticks).to.be.greaterThan(5);
  });

  it('Serial runs jobs one at a time in order and refuses when too many wait', async () => {
    const serial = new Serial('test jobs', 2);
    const order: string[] = [];
    let running = 0;
    const job = (name: string) => async () => {
      running++;
      expect(running).to.equal(1);
      order.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      order.push(`end ${name}`);
      running--;
      return name;
    };
    const a = serial.run(job('a'));
    const b = serial.run(job('b'));
    const c = serial.run(job('c'));
    expect(() => serial.run(job('d'))).to.throw(BusyError);
    expect(await Promise.all([a, b, c])).to.deep.equal(['a', 'b', 'c']);
    expect(order).to.deep.equal(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    // A failed job does not stop the queue.
    const failed = serial.run(async () => {
      throw new Error('boom');
    });
    const after = serial.run(job('e'));
    expect(
      (
        (await failed.then(
          () => undefined,
          (e: unknown) => e,
        )) as Error
      ).message,
    ).to.equal('boom');
    expect(await after).to.equal('e');
  });

  it('the check in slices finds exactly what the check at once finds', async () => {
    const d = dataDirWith({ 'templates/snippets/hostname.hbs': '{{#if attrs.pin}}\necho {{attrs.pin_value}}\n{{/if}}\n' });
    dirs.push(d);
    const nodes = [node(), node({ name: 'compute-0-4' as NodeName, attrs: { pin: 'yes' } }), node({ name: 'nas-0-0' as NodeName, appliance: 'nas' })];
    const now = checkProfiles(d, sampleEnv(), nodes);
    expect(now).to.have.length(2);
    expect(await checkProfilesInSlices(d, sampleEnv(), nodes)).to.deep.equal(now);
    expect(await checkProfilesInSlices(d, sampleEnv(), nodes, { only: new Set(['nas-0-0']) })).to.deep.equal(now.filter((p) => p.node === 'nas-0-0'));
  });

  it('a save is refused only for problems the edit brings, not for ones the files already have', async () => {
    const d = dataDirWith({});
    dirs.push(d);
    // nas-0-0 fails already (no profile for its appliance); the edit below breaks compute-0-4 only.
    const nodes = [node(), node({ name: 'compute-0-4' as NodeName, attrs: { pin: 'yes' } }), node({ name: 'nas-0-0' as NodeName, appliance: 'nas' })];
    const file = 'templates/snippets/hostname.hbs';
    const original = fs.readFileSync(path.join(d, file), 'utf8');
    const harmless = await saveEdit(d, sampleEnv(), nodes, { path: file, text: `${original}# harmless\n` }, false);
    expect(harmless).to.include({ saved: true, forced: false });
    expect(harmless.problems).to.deep.equal([]);
    const breaking = await saveEdit(d, sampleEnv(), nodes, { path: file, text: '{{#if attrs.pin}}\necho {{attrs.pin_value}}\n{{/if}}\n' }, false);
    expect(breaking.saved).to.equal(false);
    expect(breaking.problems.map((p) => `${p.node} ${p.file}:${p.line}`)).to.deep.equal(['compute-0-4 templates/snippets/hostname.hbs:2']);
    expect(fs.readFileSync(path.join(d, file), 'utf8')).to.equal(`${original}# harmless\n`);
  });
});
