/**
 * The host programs and files `image build` relies on, each with the Debian
 * package that provides it, and a runner that turns a failed program into one
 * clear error line.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UnavailableError } from '../../../protocol/errors.js';

/** A program (looked up on PATH and in the sbin directories) or an absolute file, and its Debian package. */
export interface Tool {
  what: string;
  pkg: string;
}

export const TOOLS = {
  tar: { what: 'tar', pkg: 'tar' },
  zstd: { what: 'zstd', pkg: 'zstd' },
  sgdisk: { what: 'sgdisk', pkg: 'gdisk' },
  losetup: { what: 'losetup', pkg: 'mount' },
  mount: { what: 'mount', pkg: 'mount' },
  umount: { what: 'umount', pkg: 'mount' },
  mke2fs: { what: 'mke2fs', pkg: 'e2fsprogs' },
  mkfsXfs: { what: 'mkfs.xfs', pkg: 'xfsprogs' },
  mkfsVfat: { what: 'mkfs.vfat', pkg: 'dosfstools' },
  mcopy: { what: 'mcopy', pkg: 'mtools' },
  mmd: { what: 'mmd', pkg: 'mtools' },
  extlinux: { what: 'extlinux', pkg: 'extlinux' },
  gptmbr: { what: '/usr/lib/syslinux/mbr/gptmbr.bin', pkg: 'syslinux-common' },
  systemdBoot: { what: '/usr/lib/systemd/boot/efi/systemd-bootx64.efi', pkg: 'systemd-boot-efi' },
} as const satisfies Record<string, Tool>;

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of a tool, or undefined when it is not installed. */
export function findTool(t: Tool): string | undefined {
  if (t.what.startsWith('/')) return fs.existsSync(t.what) ? t.what : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const d of dirs) {
    const p = path.join(d, t.what);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** UnavailableError naming every missing tool and the Debian packages to install. */
export function requireTools(tools: Tool[]): void {
  const missing = tools.filter((t) => !findTool(t));
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  throw new UnavailableError(`image build needs ${missing.map((t) => t.what).join(', ')}: install Debian package${pkgs.length > 1 ? 's' : ''} ${pkgs.join(' ')} (apt-get install ${pkgs.join(' ')})`);
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd args` (no shell) and resolves with its output; a non-zero exit is
 * an UnavailableError `<what> failed: <last lines of stderr>`. Output kept is bounded.
 */
export function run(cmd: string, args: string[], opts: { what?: string; signal?: AbortSignal; input?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal, cwd: opts.cwd, env: { ...process.env, LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on('data', (b: Buffer) => {
      if ((outLen += b.length) < 1 << 20) out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      if ((errLen += b.length) < 1 << 20) err.push(b);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => reject(opts.signal?.aborted ? new Error('interrupted') : new UnavailableError(`${opts.what ?? cmd}: ${e.message}`)));
    child.on('close', (code, sig) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) return resolve({ stdout, stderr });
      const tail = stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ') || `exit ${code ?? sig}`;
      reject(new UnavailableError(`${opts.what ?? `${cmd} ${args.join(' ')}`} failed: ${tail}`));
    });
  });
}
