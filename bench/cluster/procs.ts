/**
 * Processes inside network namespaces: started with `ip netns exec` (which
 * execs, so the spawned pid is the program's), each in its own process group,
 * with their CPU seconds read from /proc.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux port in use). */
const USER_HZ = 100;

export interface NsProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

/** Starts `argv` in namespace `ns`; stdout and stderr go to the given files. */
export function spawnInNs(ns: string, argv: string[], o: { stdout: string; stderr: string; env?: NodeJS.ProcessEnv; cwd?: string }): NsProcess {
  const out = fs.openSync(o.stdout, 'w');
  const err = o.stderr === o.stdout ? out : fs.openSync(o.stderr, 'w');
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', out, err], env: o.env ?? process.env, cwd: o.cwd, detached: true });
  fs.closeSync(out);
  if (err !== out) fs.closeSync(err);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.once('error', () => undefined);
  return { child, pid: child.pid ?? -1, exited, running: () => child.exitCode === null && child.signalCode === null };
}

/**
 * Wraps a command in bash so that, when it ends (also by a signal), the
 * user and system CPU seconds of it and everything it waited for are written
 * to `cpuFile` as `user system`.
 */
export function withCpuAccounting(argv: string[], cpuFile: string): string[] {
  const script = '"$@"; rc=$?; times > "$KSB_CPU_FILE"; exit $rc';
  return ['env', `KSB_CPU_FILE=${cpuFile}`, 'bash', '-c', script, 'bash', ...argv];
}

/** User and system seconds from a `withCpuAccounting` file (bash `times`: the shell's line, then its children's `0m1.234s 0m0.100s`), or null. */
export function readCpuSplit(cpuFile: string): { user: number; system: number } | null {
  let text: string;
  try {
    text = fs.readFileSync(cpuFile, 'utf8');
  } catch {
    return null;
  }
  const children = text.trim().split('\n').pop() ?? '';
  const parts = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return parts.length === 2 ? { user: parts[0]!, system: parts[1]! } : null;
}

/** user + system CPU seconds of a live process (its own, not its children's), or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return null;
  }
}

/** Busy and total jiffies of all CPUs since boot (first line of /proc/stat). */
export function machineCpuTicks(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** Direct children of a live process. */
export function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Sends `signal` to a pid, ignoring one that is already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

/** Sends `signal` to the process group a `spawnInNs` process leads. */
export function signalGroup(p: NsProcess, signal: NodeJS.Signals): void {
  if (p.pid > 0) signalPid(-p.pid, signal);
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopGroup(p: NsProcess, graceMs: number): Promise<void> {
  if (!p.running()) return;
  signalGroup(p, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(p, 'SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

/**
 * GET `url` from inside namespace `ns` (the frontend's address exists only
 * there) with a short Node one-off; resolves with the body, rejects on a
 * non-2xx status or a network error.
 */
export function fetchInNs(ns: string, url: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<string> {
  const code = `fetch(process.argv[1],{headers:JSON.parse(process.argv[2]),signal:AbortSignal.timeout(${timeoutMs})}).then(async r=>{const t=await r.text();if(!r.ok){process.stderr.write(r.status+' '+t.slice(0,200));process.exit(1)}process.stdout.write(t)},e=>{process.stderr.write(String(e&&e.cause||e));process.exit(1)})`;
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', code, url, JSON.stringify(headers)], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`GET ${url} in ${ns}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}
