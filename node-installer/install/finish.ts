/**
 * The end of a successful install: linger (done by the caller's
 * `beforeReboot`), then boot the installed system. `kexec` loads the installed
 * root's newest kernel and jumps to it without a firmware reboot (seed: Orbit
 * PXE plans); `reboot` goes through the firmware, which now boots from disk;
 * `none` leaves the machine as it is. `auto` is kexec when the installed root
 * has a kernel and kexec-tools are present, else reboot.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { findKernel } from './target.js';

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

export async function finishBoot(o: { mode: RebootMode; root?: string; log: Logger; beforeReboot: () => Promise<void> }): Promise<void> {
  if (o.mode === 'none') {
    await o.beforeReboot();
    o.log.info('install complete; not rebooting (--no-reboot)');
    return;
  }
  let mode = o.mode;
  const kernel = o.root ? findKernel(o.root) : undefined;
  if (mode === 'auto') mode = kernel && (await hasCommand('kexec')) ? 'kexec' : 'reboot';
  if (mode === 'kexec') {
    if (!kernel) throw new Error('kexec: the installed root has no /boot/vmlinuz-*');
    const args = ['-l', kernel.kernel, '--reuse-cmdline', ...(kernel.initrd ? [`--initrd=${kernel.initrd}`] : [])];
    o.log.info({ kernel: kernel.kernel, initrd: kernel.initrd }, 'loading the installed kernel for kexec');
    await run('kexec', args);
    await o.beforeReboot();
    o.log.info('kexec into the installed system');
    await run('kexec', ['-e']);
    return;
  }
  await o.beforeReboot();
  o.log.info('rebooting into the installed system');
  await run('systemctl', ['reboot']).catch(() => run('reboot', []));
}
