/**
 * OpenIPMI's `ipmi_sim` as a BMC for tests: IPMI 2.0 (lanplus) on 127.0.0.1,
 * one admin user, and a chassis-control script that keeps the power state and
 * boot device in files and logs every call the BMC makes (`get power`,
 * `set boot pxe`, `set power 0`, ...), so a test sees what the BMC was asked.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';

const CHASSIS = `#!/bin/sh
dir=$(dirname "$0")
shift
op=$1; shift
echo "$op $*" >> "$dir/calls.log"
case $op in
get) for p in "$@"; do case $p in
  power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 1)";;
  boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
  esac; done;;
set) while [ $# -gt 1 ]; do case $1 in
  power) echo "$2" > "$dir/power";;
  boot) echo "$2" > "$dir/boot";;
  esac; shift 2; done;;
esac
exit 0
`;

/** A UDP port nothing listens on right now. */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, host, resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export class IpmiSim {
  port = 0;
  private child?: ChildProcess;

  constructor(
    private readonly dir: string,
    readonly user: string,
    readonly password: string,
  ) {}

  /** Starts ipmi_sim and resolves once it answers `chassis power status`. */
  async start(): Promise<void> {
    fs.mkdirSync(path.join(this.dir, 'state'), { recursive: true });
    const chassis = path.join(this.dir, 'chassis.sh');
    fs.writeFileSync(chassis, CHASSIS, { mode: 0o755 });
    this.port = await freeUdpPort();
    fs.writeFileSync(
      path.join(this.dir, 'lan.conf'),
      [
        'name "kickswarm-test"',
        'set_working_mc 0x20',
        '  startlan 1',
        `    addr 127.0.0.1 ${this.port}`,
        '    priv_limit admin',
        ...['callback', 'user', 'operator', 'admin'].map((p) => `    allowed_auths_${p} none md2 md5 straight`),
        '    guid a123456789abcdefa123456789abcdef',
        '  endlan',
        `  chassis_control "${chassis} 0x20"`,
        `  user 2 true "${this.user}" "${this.password}" admin 10 none md2 md5 straight`,
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(this.dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
    this.child = spawn('ipmi_sim', ['-c', path.join(this.dir, 'lan.conf'), '-f', path.join(this.dir, 'sim.emu'), '-s', path.join(this.dir, 'state'), '-n'], { stdio: 'ignore' });
    const until = Date.now() + 20_000;
    for (;;) {
      const r = spawnSync('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(this.port), '-U', this.user, '-E', '-N', '1', '-R', '1', 'chassis', 'power', 'status'], {
        env: { ...process.env, IPMI_PASSWORD: this.password },
        encoding: 'utf8',
        timeout: 5000,
      });
      if (r.status === 0) break;
      if (Date.now() > until) throw new Error(`ipmi_sim did not answer on port ${this.port}: ${r.stderr}`);
      await new Promise((r2) => setTimeout(r2, 200));
    }
    fs.writeFileSync(path.join(this.dir, 'calls.log'), '');
  }

  /** The chassis-control calls since start, one per line (`set boot pxe`). */
  calls(): string[] {
    return fs.readFileSync(path.join(this.dir, 'calls.log'), 'utf8').split('\n').filter(Boolean);
  }

  close(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }
}
