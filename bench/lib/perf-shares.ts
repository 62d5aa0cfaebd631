/**
 * Where a set of processes spent their CPU, from a `perf record -a` capture:
 * every sample of the given pids is put in one of a few classes by its
 * symbol and object (kernel networking, the rest of the kernel, V8's
 * compilers and parser, JavaScript and V8's runtime, V8's collector,
 * hashing, libc/Node.js/libuv). JIT frames are named only when the process
 * ran with `--perf-basic-prof`; they count as JavaScript either way.
 */

export const PERF_CLASSES = [
  'kernel: network',
  'kernel: scheduling, memory, other',
  'V8 compiler and parser',
  'JavaScript, V8 builtins and runtime',
  'V8 collector',
  'SHA-1 / SHA-256',
  'libc, Node.js, libuv',
  'other',
] as const;
export type PerfClass = (typeof PERF_CLASSES)[number];

const KERNEL_NET = /softirq|tcp|skb|veth|br_|nf_|netif|qdisc|tbf|ip_|dev_|eth_|inet|sock|napi|neigh|sendmsg|recvmsg|sk_|nft|ipt/;

/** The class of one sample: `sym` as perf names it, `dso` the object's file name (`[kernel.kallsyms]`, `node`, `perf-123.map`, ...). */
export function classifySample(sym: string, dso: string): PerfClass {
  if (dso.includes('kernel')) return KERNEL_NET.test(sym) ? 'kernel: network' : 'kernel: scheduling, memory, other';
  if (/^perf-\d+\.map$/.test(dso) || dso.startsWith('[JIT]')) return 'JavaScript, V8 builtins and runtime';
  if (/sha1_|sha256_|SHA1_|SHA256_/.test(sym)) return 'SHA-1 / SHA-256';
  if (/compiler::|maglev::|Parser|Scanner|Utf16CharacterStream|Preparse|BytecodeGenerator/.test(sym)) return 'V8 compiler and parser';
  if (/Marking|Sweep|Scaveng|Evacuat|MemoryChunk|RememberedSet|SlotSet|heap::|::Heap::|GCTracer/.test(sym)) return 'V8 collector';
  if (sym.startsWith('Builtins_') || sym.startsWith('v8::')) return 'JavaScript, V8 builtins and runtime';
  if (/^libc[.-]|^libstdc\+\+|^libgcc|^libm[.-]|^ld-linux/.test(dso) || sym.startsWith('node::') || sym.startsWith('uv_') || sym.startsWith('uv__')) {
    return 'libc, Node.js, libuv';
  }
  return 'other';
}

/** One line of `perf script -F pid,tid,ip,sym,dso`: "PID/TID  IP SYM (DSO)". */
export function parsePerfLine(line: string): { pid: number; sym: string; dso: string } | undefined {
  const m = /^\s*(\d+)\/\d+\s+[0-9a-f]+\s+(.*?)\s+\((.*?)\)\s*$/.exec(line);
  if (!m) return undefined;
  return { pid: Number(m[1]), sym: m[2]!, dso: m[3]!.split('/').pop()! };
}

/** Samples per class, and their shares, of the processes in `pids`. */
export function perfShares(lines: Iterable<string>, pids: Set<number>): { samples: number; classes: { class: PerfClass; samples: number; share: number }[] } {
  const counts = new Map<PerfClass, number>(PERF_CLASSES.map((c) => [c, 0]));
  let samples = 0;
  for (const line of lines) {
    const s = parsePerfLine(line);
    if (!s || !pids.has(s.pid)) continue;
    const c = classifySample(s.sym, s.dso);
    counts.set(c, counts.get(c)! + 1);
    samples++;
  }
  const classes = PERF_CLASSES.map((c) => ({ class: c, samples: counts.get(c)!, share: samples ? Math.round((counts.get(c)! / samples) * 1000) / 10 : 0 }));
  return { samples, classes };
}
