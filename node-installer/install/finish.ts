/**
 * The end of a successful install, in two steps so the installed root can be
 * unmounted in between: `prepareBoot` (root still mounted) decides the mode and,
 * for kexec, loads the installed system's kernel, initrd and own command line
 * (bootcfg.ts); the returned `go` (root unmounted, after the linger) syncs and
 * jumps: `kexec -e` without a firmware reboot (seed: Orbit PXE plans), or a
 * reboot through the firmware, which PXE-boots into `localboot`. `none` leaves
 * the machine as it is.
 *
 * `auto` follows the kickstart (`reboot --kexec` -> kexec, `reboot` -> reboot);
 * with no word from it, kexec when the installed root has a kernel and kexec
 * is present, else reboot.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Kickstart } from '../../protocol/kickstart.js';
import type { Logger } from '../log.js';
import { findBootEntry } from './bootcfg.js';

const run = promisify(execFile);

export type RebootMode = 'auto' | 'kexec' | 'reboot' | 'none';

export async function hasCommand(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** The kickstart's say on the end: `reboot --kexec` -> kexec, `reboot` -> reboot, nothing -> undefined. */
export function kickstartRebootMode(ks: Pick<Kickstart, 'commands'> | undefined): 'kexec' | 'reboot' | undefined {
  const c = ks?.commands.find((x) => x.name === 'reboot');
  if (!c) return undefined;
  return c.args.includes('--kexec') ? 'kexec' : 'reboot';
}

/** Reboots through the firmware: systemd when it runs the machine, else at once (the installer's RAM root has nothing to stop). */
async function firmwareReboot(): Promise<void> {
  await run('sync', []).catch(() => undefined);
  if (await hasCommand('systemctl')) await run('systemctl', ['reboot']);
  else await run('reboot', ['-f']);
}

export interface PreparedBoot {
  mode: 'kexec' | 'reboot' | 'none';
  /** Leaves the installer for the installed system; call after unmounting the root. */
  go(): Promise<void>;
}

export async function prepareBoot(o: { mode: RebootMode; kickstart?: Pick<Kickstart, 'commands'>; root?: string; log: Logger }): Promise<PreparedBoot> {
  if (o.mode === 'none') return { mode: 'none', go: async () => o.log.info('install complete; not rebooting (--no-reboot)') };
  const entry = o.root ? findBootEntry(o.root) : undefined;
  let mode = o.mode === 'auto' ? (kickstartRebootMode(o.kickstart) ?? 'auto') : o.mode;
  if (mode === 'auto') mode = entry && (await hasCommand('kexec')) ? 'kexec' : 'reboot';
  if (mode === 'kexec') {
    if (!entry) throw new Error('kexec: the installed root has no kernel (no boot loader entry, no /boot/vmlinuz-*)');
    const args = ['-l', entry.kernel, `--command-line=${entry.cmdline}`, ...(entry.initrd ? [`--initrd=${entry.initrd}`] : [])];
    o.log.info({ kernel: entry.kernel, initrd: entry.initrd, cmdline: entry.cmdline, from: entry.from }, 'loading the installed kernel for kexec');
    try {
      await run('kexec', args);
    } catch (e) {
      // The install itself succeeded: the firmware path still boots the disk.
      o.log.warn({ err: (e as Error).message }, 'kexec cannot load the installed kernel; rebooting through the firmware instead');
      return { mode: 'reboot', go: firmwareReboot };
    }
    return {
      mode,
      async go() {
        o.log.info('kexec into the installed system');
        await run('sync', []).catch(() => undefined);
        await run('kexec', ['-e']);
        throw new Error('kexec -e returned');
      },
    };
  }
  return {
    mode: 'reboot',
    async go() {
      o.log.info('rebooting into the installed system');
      await firmwareReboot();
    },
  };
}
