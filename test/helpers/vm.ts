/**
 * QEMU command lines for test and benchmark VMs. Firmware and loader are
 * parameters so other combinations are added here, not copied:
 *   firmware bios   SeaBIOS (QEMU's default) + the NIC's iPXE ROM
 *   firmware uefi   OVMF (`ovmf` package): read-only code + a per-VM copy of the vars
 *   loader          which DHCP boot file the lab hands out (see vm-lab.ts)
 * KVM is used when `accel` says so; the default is TCG (`-accel tcg -cpu max`),
 * the only accelerator that works on every CI machine.
 */
import fs from 'node:fs';
import path from 'node:path';

export type Firmware = 'bios' | 'uefi';
export type Loader = 'pxelinux' | 'lpxelinux' | 'ipxe';

export interface VmSpec {
  name: string;
  mac: string;
  /** Raw disk image file (created empty by the caller). */
  disk: string;
  /** Tap device in the lab's namespace. */
  tap: string;
  /** Serial console log (the test polls it). */
  serialLog: string;
  /** Working folder (OVMF vars copy). */
  dir: string;
  memMiB: number;
  firmware: Firmware;
  accel: 'tcg' | 'kvm';
  /**
   * The NIC's option ROM: undefined keeps QEMU's (iPXE, which already sends
   * user-class iPXE); '' gives none, so OVMF's own PXE (the firmware's
   * network stack, as on most real UEFI machines) loads the first stage.
   */
  nicRom?: string;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** `qemu-system-x86_64` arguments: network first (bootindex 1), then the disk. */
export function qemuArgs(s: VmSpec): string[] {
  const args = [
    '-name',
    s.name,
    '-m',
    String(s.memMiB),
    '-smp',
    '1',
    ...(s.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    '-display',
    'none',
    '-vga',
    'std',
    '-monitor',
    'none',
    '-serial',
    `file:${s.serialLog}`,
    '-netdev',
    `tap,id=n0,ifname=${s.tap},script=no,downscript=no`,
    '-device',
    `virtio-net-pci,netdev=n0,mac=${s.mac},bootindex=1${s.nicRom !== undefined ? `,romfile=${s.nicRom}` : ''}`,
    '-drive',
    `file=${s.disk},format=raw,if=none,id=d0,cache=unsafe`,
    '-device',
    'virtio-blk-pci,drive=d0,bootindex=2',
  ];
  if (s.firmware === 'uefi') {
    const vars = path.join(s.dir, `${s.name}-OVMF_VARS.fd`);
    fs.copyFileSync(OVMF_VARS, vars);
    args.push('-machine', 'q35', '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${vars}`);
  }
  return args;
}

/** True when `/dev/kvm` can really run a guest; only the caller can tell (QEMU aborts on some nested setups), so this is opt-in. */
export function accelFromEnv(env: NodeJS.ProcessEnv = process.env): 'tcg' | 'kvm' {
  return env.KICKSWARM_VM_ACCEL === 'kvm' ? 'kvm' : 'tcg';
}
