/**
 * A node's boot timeline for the dashboard, read from its event history: the
 * steps of its latest install (from the latest reinstall request, or from the
 * first event) in order, each with its time and seconds since the start.
 */
import type { NodeEvent } from '../inventory/types.js';

export interface TimelineStep {
  at: string;
  /** Seconds since the first step. */
  offset: number;
  step: string;
  detail: string;
  /** `ok`, `bad` (a failure or refusal) or `info`. */
  tone: 'ok' | 'bad' | 'info';
}

function stepOf(e: NodeEvent, flipped: boolean): { step: string; tone: TimelineStep['tone'] } | undefined {
  const d = e.data ?? {};
  switch (e.kind) {
    case 'reinstall':
      return { step: 'reinstall requested', tone: 'info' };
    case 'power':
      return { step: 'power cycle', tone: /failed/.test(e.message) ? 'bad' : 'ok' };
    case 'pxe':
      if (/failed/.test(e.message)) return { step: 'TFTP config failed', tone: 'bad' };
      return { step: flipped ? 'first boot seen (network boot after the flip)' : 'TFTP: PXE config fetched', tone: 'ok' };
    case 'kickstart': {
      const st = Number(d.status);
      return st === 200 ? { step: 'kickstart served', tone: 'ok' } : { step: `kickstart refused (${Number.isFinite(st) ? st : '?'})`, tone: 'bad' };
    }
    case 'install': {
      const s = String(d.state ?? '');
      const names: Record<string, string> = {
        profile: 'installer started',
        downloading: 'image started',
        writing: 'writing',
        verifying: 'verifying',
        post: 'verified; %post',
        done: 'install done',
        failed: 'install FAILED',
      };
      return { step: names[s] ?? `install ${s}`, tone: s === 'failed' ? 'bad' : 'ok' };
    }
    case 'boot':
      return { step: d.to === 'os' ? 'flip to os (boot from disk next)' : `boot action -> ${String(d.to ?? '?')}`, tone: 'info' };
    case 'discover':
    case 'capture':
      return { step: e.kind, tone: 'info' };
    default:
      return undefined;
  }
}

export function timeline(events: NodeEvent[]): TimelineStep[] {
  let from = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i]!.kind === 'reinstall') {
      from = i;
      break;
    }
  }
  const steps: TimelineStep[] = [];
  let t0: number | undefined;
  let flipped = false;
  for (const e of events.slice(from)) {
    const s = stepOf(e, flipped);
    if (e.kind === 'boot' && e.data?.to === 'os') flipped = true;
    if (e.kind === 'boot' && e.data?.to === 'install') flipped = false;
    if (!s) continue;
    const t = Date.parse(e.at);
    t0 ??= t;
    steps.push({ at: e.at, offset: Math.round((t - t0) / 100) / 10, step: s.step, detail: e.message, tone: s.tone });
  }
  return steps;
}
