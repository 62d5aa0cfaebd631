/**
 * A memory cgroup of its own for a process under test (root only): cgroup v2
 * with the memory controller (`memory.max`), else cgroup v1's memory hierarchy
 * (`memory.limit_in_bytes`). A child joins it by writing its pid to `procs`
 * before it execs (see `wrap`).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface MemoryCgroup {
  dir: string;
  version: 1 | 2;
  /** argv that runs `argv` inside the cgroup (a shell joins it, then execs). */
  wrap(argv: string[]): string[];
  /** Highest memory use the kernel recorded, bytes (undefined when the kernel keeps none). */
  peakBytes(): number | undefined;
  /** Processes of the cgroup the OOM killer ended. */
  oomKills(): number;
  /** Anonymous memory of its processes now, bytes (not the page cache of the files they write). */
  anonBytes(): number;
  /** Removes the cgroup (its processes must have exited). */
  remove(): void;
}

function v2Root(): string | undefined {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    try {
      const controllers = fs.readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
      const enabled = fs.readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
      if (controllers.includes('memory') && enabled.includes('memory')) return root;
    } catch {
      /* not this one */
    }
  }
  return undefined;
}

/** Why no memory cgroup can be made here, or undefined when one can. */
export function memoryCgroupUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'memory cgroups need root';
  if (v2Root() || fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) return undefined;
  return 'no cgroup v2 memory controller and no cgroup v1 memory hierarchy';
}

function field(text: string, key: string): number {
  return Number(new RegExp(`^${key} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const root = v2Root();
  const dir = root ? path.join(root, name) : path.join('/sys/fs/cgroup/memory', name);
  fs.mkdirSync(dir);
  const version: 1 | 2 = root ? 2 : 1;
  if (version === 2) {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
    if (fs.existsSync(path.join(dir, 'memory.swap.max'))) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
  } else {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  }
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    dir,
    version,
    wrap: (argv) => ['sh', '-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs'), ...argv],
    peakBytes: () => {
      const f = version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes';
      return fs.existsSync(path.join(dir, f)) ? Number(read(f)) : undefined;
    },
    oomKills: () => (version === 2 ? field(read('memory.events'), 'oom_kill') : field(read('memory.oom_control'), 'oom_kill')),
    anonBytes: () => field(read('memory.stat'), version === 2 ? 'anon' : 'total_rss'),
    remove: () => {
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(dir);
          return;
        } catch {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        }
      }
    },
  };
}
