/**
 * A lab of real VMs that PXE-boot from kickswarm, for the end-to-end test and
 * `npm run bench:vm`. As root:
 *   - one network namespace (`ksvm<pid>`) with a bridge (10.77.0.1/24, fd00:77::1/64)
 *     and a tap per VM;
 *   - dnsmasq with the config `kickswarm dhcp-config --format dnsmasq` printed
 *     (plus router advertisements so iPXE does not wait for IPv6);
 *   - `kickswarm serve` in the namespace with TFTP on port 69 and the boot
 *     environment `kickswarm bootenv build` made;
 *   - a test disk image (vm-image.ts) added with `kickswarm image add`, a profile
 *     installing it to /dev/vda whose %post writes the node name to /etc/hostname;
 *   - a power script for `kickswarm reinstall --power command` that starts a node's VM.
 * Nodes may differ in firmware (`firmwareOf`): UEFI nodes run OVMF without a
 * NIC ROM, so the firmware's own PXE loads the first stage. `loader: 'ipxe'`
 * sets `pxe.loader: ipxe`; `disk: 'gpt'` installs a GPT image that boots on both.
 * Everything it made is removed by close(), also after a failure.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './cli.js';
import { BOOTED_MARKER, buildGptTestDisk, buildTestDisk } from './vm-image.js';
import { type Firmware, type Loader, accelFromEnv, qemuArgs } from './vm.js';

export interface LabOptions {
  nodes: number;
  /** Where downloaded packages and the built test disk are kept between runs. */
  cacheDir: string;
  /** Scratch folder (removed by close()). */
  dir: string;
  firmware: Firmware;
  loader: Loader;
  method: 'torrent' | 'multicast' | 'http';
  bootOverHttp: boolean;
  memMiB: number;
  /** Nodes (by index) whose install ends with kexec instead of a firmware reboot. */
  kexec: (index: number) => boolean;
  /** A node's firmware when the nodes differ (default: `firmware` for all). */
  firmwareOf?: (index: number) => Firmware;
  /**
   * The test image: `mbr` (BIOS only, extlinux; the default) or `gpt` (image
   * build --firmware both: an ESP with systemd-boot and a BIOS-bootable root).
   */
  disk?: 'mbr' | 'gpt';
  log: (line: string) => void;
}

export interface LabNode {
  name: string;
  firmware: Firmware;
  mac: string;
  ip: string;
  tap: string;
  serialLog: string;
  disk: string;
}

const MAIN = path.join(REPO, 'server/main.ts');
export const LAB_ADDR = '10.77.0.1';

/** Where downloaded packages and built test disks are kept between runs (VM tests and bench:vm). */
export const VM_CACHE = process.env.KICKSWARM_TEST_CACHE ?? '/var/cache/kickswarm-test';

/** Whether a command is on the PATH. */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The fields of the frontend's JSON log lines the VM checks read. */
export interface FrontendLogLine {
  time?: number;
  msg?: string;
  file?: string;
  peer?: string;
  url?: string;
  ip?: string;
  status?: number;
  node?: string;
  state?: string;
  mode?: string;
  action?: string;
}

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

export class VmLab {
  readonly ns = `ksvm${process.pid}`;
  readonly bridge = 'ksvmbr0';
  readonly dataDir: string;
  readonly nodes: LabNode[] = [];
  readonly frontendLog: string;
  private procs: ChildProcess[] = [];
  private nsMade = false;
  private closed = false;

  constructor(readonly o: LabOptions) {
    this.dataDir = path.join(o.dir, 'data');
    this.frontendLog = path.join(o.dir, 'frontend.log');
  }

  /** `kickswarm --data-dir DIR args...` from source, on the host; throws with its stderr on failure. */
  cli(args: string[], timeoutMs = 300_000): string {
    try {
      return execFileSync(process.execPath, ['--import', 'tsx', MAIN, '--data-dir', this.dataDir, ...args], { cwd: REPO, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      throw new Error(`kickswarm ${args.join(' ')} failed: ${(err.stderr || err.stdout || err.message).trim().slice(-2000)}`);
    }
  }

  /** Builds everything and starts dnsmasq and the frontend; VMs start with reinstall(). */
  async start(): Promise<void> {
    const o = this.o;
    fs.mkdirSync(this.dataDir, { recursive: true });
    fs.writeFileSync(
      path.join(this.dataDir, 'kickswarm.yaml'),
      [
        `listen: ${LAB_ADDR}`,
        'httpPort: 8080',
        'tftpPort: 69',
        'logLevel: debug',
        'swarm:',
        // A slow frontend seeder makes the nodes trade pieces with each other, as on a real cluster.
        '  uploadLimitBytes: 2000000',
        'pxe:',
        '  append: "console=tty0 console=ttyS0,115200 no_timer_check panic=10 kickswarm.onfail=halt"',
        `  bootOverHttp: ${o.bootOverHttp}`,
        ...(o.loader === 'ipxe' ? ['  loader: ipxe'] : []),
        '',
      ].join('\n'),
    );
    o.log('building the boot environment (kickswarm bootenv build)');
    this.cli(['bootenv', 'build', '--cache-dir', o.cacheDir], 900_000);
    o.log('building the test disk image');
    const gpt = o.disk === 'gpt';
    const disk = gpt ? await buildGptTestDisk({ cacheDir: o.cacheDir, repo: REPO, log: o.log }) : await buildTestDisk({ cacheDir: o.cacheDir, log: o.log });
    this.cli(['image', 'add', disk, '--name', 'vmtest']);
    fs.writeFileSync(
      path.join(this.dataDir, 'profiles', 'vmtest.yaml'),
      `description: VM test node\nextends: base\nimage:\n  name: vmtest\n  method: ${o.method}\n  target: /dev/vda\npost:\n  - hostname\n`,
    );
    for (let i = 1; i <= o.nodes; i++) {
      const hex = i.toString(16).padStart(2, '0');
      const n: LabNode = {
        name: `vm-0-${i - 1}`,
        firmware: o.firmwareOf?.(i - 1) ?? o.firmware,
        mac: `52:54:00:77:00:${hex}`,
        ip: `10.77.0.${10 + i}`,
        tap: `ksvmt${i}`,
        serialLog: path.join(o.dir, `vm-0-${i - 1}.serial.log`),
        disk: path.join(o.dir, `vm-0-${i - 1}.disk`),
      };
      this.cli(['node', 'add', n.name, '--mac', n.mac, '--ip', n.ip, '--appliance', 'vmtest', '--rack', '0', '--rank', String(i - 1), ...(o.kexec(i - 1) ? ['--attr', 'reboot=kexec'] : [])]);
      fs.writeFileSync(n.disk, Buffer.alloc(0));
      fs.truncateSync(n.disk, Math.max(128 << 20, fs.statSync(disk).size + (16 << 20)));
      this.nodes.push(n);
    }
    this.cli(['profile', 'check']);

    o.log(`network namespace ${this.ns}`);
    sh('ip', ['netns', 'add', this.ns]);
    this.nsMade = true;
    const ipns = (...a: string[]) => sh('ip', ['netns', 'exec', this.ns, ...a]);
    ipns('ip', 'link', 'set', 'lo', 'up');
    ipns('ip', 'link', 'add', this.bridge, 'type', 'bridge');
    ipns('ip', 'addr', 'add', `${LAB_ADDR}/24`, 'dev', this.bridge);
    ipns('ip', '-6', 'addr', 'add', 'fd00:77::1/64', 'dev', this.bridge, 'nodad');
    ipns('ip', 'link', 'set', this.bridge, 'up');
    for (const n of this.nodes) {
      ipns('ip', 'tuntap', 'add', 'dev', n.tap, 'mode', 'tap');
      ipns('ip', 'link', 'set', n.tap, 'master', this.bridge, 'up');
    }

    const dnsmasqConf = path.join(o.dir, 'dnsmasq.conf');
    fs.writeFileSync(dnsmasqConf, this.cli(['dhcp-config', '--format', 'dnsmasq']));
    const dnsmasqLog = fs.openSync(path.join(o.dir, 'dnsmasq.log'), 'a');
    this.procs.push(
      spawn(
        'ip',
        [
          'netns',
          'exec',
          this.ns,
          'dnsmasq',
          '--keep-in-foreground',
          '--no-daemon',
          '--conf-file=' + dnsmasqConf,
          '--port=0',
          '--no-resolv',
          '--no-hosts',
          `--interface=${this.bridge}`,
          '--bind-interfaces',
          '--log-dhcp',
          '--log-facility=-',
          `--dhcp-leasefile=${path.join(o.dir, 'dnsmasq.leases')}`,
          `--pid-file=${path.join(o.dir, 'dnsmasq.pid')}`,
          '--enable-ra',
          '--dhcp-range=fd00:77::,ra-only',
        ],
        { stdio: ['ignore', dnsmasqLog, dnsmasqLog] },
      ),
    );
    const feLog = fs.openSync(this.frontendLog, 'a');
    this.procs.push(spawn('ip', ['netns', 'exec', this.ns, process.execPath, '--import', 'tsx', MAIN, '--data-dir', this.dataDir, 'serve'], { cwd: REPO, stdio: ['ignore', feLog, feLog] }));
    await this.waitFor(() => fs.readFileSync(this.frontendLog, 'utf8').includes('kickswarm frontend started'), 120_000, 'the frontend to start');

    const qemu = fs.existsSync('/usr/bin/qemu-system-x86_64') ? '/usr/bin/qemu-system-x86_64' : 'qemu-system-x86_64';
    for (const n of this.nodes) {
      // UEFI nodes PXE-boot with the firmware's own network stack (no iPXE ROM), as most real UEFI machines do.
      const nicRom = n.firmware === 'uefi' ? '' : undefined;
      const args = qemuArgs({
        name: n.name,
        mac: n.mac,
        disk: n.disk,
        tap: n.tap,
        serialLog: n.serialLog,
        dir: o.dir,
        memMiB: o.memMiB,
        firmware: n.firmware,
        accel: accelFromEnv(),
        ...(nicRom !== undefined ? { nicRom } : {}),
      });
      const quoted = [qemu, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      fs.writeFileSync(
        path.join(o.dir, `start-${n.name}.sh`),
        `#!/bin/sh\n# Powers on ${n.name}: a fresh QEMU in the lab's namespace (a running one is stopped first).\n` +
          `d='${o.dir}'\n[ -f "$d/${n.name}.pid" ] && kill "$(cat "$d/${n.name}.pid")" 2>/dev/null\n` +
          `setsid ip netns exec ${this.ns} ${quoted} </dev/null >>"$d/${n.name}.qemu.log" 2>&1 &\necho $! > "$d/${n.name}.pid"\n`,
        { mode: 0o755 },
      );
    }
    fs.writeFileSync(path.join(o.dir, 'power.sh'), `#!/bin/sh\nexec '${o.dir}'/start-"$1".sh\n`, { mode: 0o755 });
  }

  /** The `--power-command` template that starts a node's VM. */
  get powerCommand(): string {
    return `${path.join(this.o.dir, 'power.sh')} {{name}}`;
  }

  /** The frontend's log so far, one parsed JSON line each (other lines left out). */
  frontendLines(): FrontendLogLine[] {
    return fs
      .readFileSync(this.frontendLog, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as FrontendLogLine;
        } catch {
          return {};
        }
      });
  }

  serial(n: LabNode): string {
    try {
      return fs.readFileSync(n.serialLog, 'latin1');
    } catch {
      return '';
    }
  }

  /** Whether a node's installed system has printed its marker. */
  booted(n: LabNode): boolean {
    return this.serial(n).includes(`${BOOTED_MARKER} hostname=`);
  }

  /**
   * Runs `kickswarm reinstall --all --power command --wait` as an admin would,
   * then waits until every VM has booted its installed disk; throws naming
   * the step that did not happen (reinstall's exit status and stderr, or the
   * node that stopped first).
   */
  async reinstallAndBoot(): Promise<void> {
    const reinstall = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, '--data-dir', this.dataDir, 'reinstall', '--all', '--power', 'command', '--power-command', this.powerCommand, '--wait', '--timeout', '2400', '--json'],
      {
        cwd: REPO,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    reinstall.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => reinstall.on('close', resolve));
    if (code !== 0) throw new Error(`reinstall --wait exited ${code}: ${err.slice(-1500)}`);
    for (const n of this.nodes) {
      await this.waitFor(() => this.booted(n) || !this.running(n), 1_200_000, `${n.name} to boot its installed disk`);
      if (!this.booted(n)) throw new Error(`${n.name} stopped before booting its installed disk`);
    }
  }

  /** Whether a node's QEMU is still running. */
  running(n: LabNode): boolean {
    try {
      const pid = Number(fs.readFileSync(path.join(this.o.dir, `${n.name}.pid`), 'utf8'));
      return fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  }

  async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Stops every VM and process, deletes the namespace (its bridge and taps) and the scratch folder. */
  async close(keep = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const n of this.nodes) {
      try {
        const pid = Number(fs.readFileSync(path.join(this.o.dir, `${n.name}.pid`), 'utf8'));
        if (pid > 1) process.kill(pid, 'SIGKILL');
      } catch {
        // not started or already gone
      }
    }
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGTERM');
    const end = Date.now() + 10_000;
    while (this.procs.some((p) => p.exitCode === null && p.signalCode === null) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (this.nsMade) {
      try {
        sh('ip', ['netns', 'del', this.ns]);
      } catch {
        // already gone
      }
    }
    if (!keep) fs.rmSync(this.o.dir, { recursive: true, force: true });
  }
}
