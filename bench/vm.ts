/**
 * `npm run bench:vm -- --nodes N [--method torrent|multicast|http] [--boot-over http|tftp]
 *   [--loader pxelinux|ipxe] [--firmware bios|uefi] [--finish mixed|kexec|reboot] [--mem MiB] [--json] [--keep]`
 *
 * Real VMs (QEMU, TCG unless KICKSWARM_VM_ACCEL=kvm) with empty disks PXE-boot
 * from kickswarm, install the test image and boot their installed disks, in
 * the lab of test/helpers/vm-lab.ts (root). Prints a per-node timeline in
 * seconds from `kickswarm reinstall` (DHCP, loader, kernel, initrd, kickstart,
 * image, verify, %post, flip, reboot, first boot of the installed system) and
 * the makespan. `--finish mixed` ends even-numbered nodes with kexec and odd
 * ones with a firmware reboot. `--loader ipxe` hands out iPXE (the kernel and
 * initrd then always come over HTTP) and installs the GPT test image;
 * `--firmware uefi` runs OVMF without a NIC ROM (its own PXE loads
 * syslinux.efi or snponly.efi). `loader` is when the node fetched its first
 * stage (pxelinux.0, syslinux.efi, undionly.kpxe, snponly.efi) or, for an
 * iPXE ROM, its script.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from '../test/helpers/cli.js';
import { type FrontendLogLine, type LabNode, VM_CACHE, VmLab } from '../test/helpers/vm-lab.js';

const { values: a } = parseArgs({
  // npm run passes its own `--` through: drop it.
  args: process.argv.slice(2).filter((x, i) => !(i === 0 && x === '--')),
  options: {
    nodes: { type: 'string', default: '2' },
    method: { type: 'string', default: 'torrent' },
    'boot-over': { type: 'string', default: 'tftp' },
    finish: { type: 'string', default: 'mixed' },
    loader: { type: 'string', default: 'pxelinux' },
    firmware: { type: 'string', default: 'bios' },
    mem: { type: 'string', default: '1024' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const nodes = Number(a.nodes);
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new Error('--nodes is 1..16');
if (!['torrent', 'multicast', 'http'].includes(a.method!)) throw new Error('--method torrent|multicast|http');
if (!['http', 'tftp'].includes(a['boot-over']!)) throw new Error('--boot-over http|tftp');
if (!['mixed', 'kexec', 'reboot'].includes(a.finish!)) throw new Error('--finish mixed|kexec|reboot');
if (!['pxelinux', 'ipxe'].includes(a.loader!)) throw new Error('--loader pxelinux|ipxe');
if (!['bios', 'uefi'].includes(a.firmware!)) throw new Error('--firmware bios|uefi');
const ipxe = a.loader === 'ipxe';
if (process.getuid?.() !== 0) throw new Error('bench:vm needs root (namespaces, taps, loop devices, TFTP port 69)');

const say = (s: string) => process.stderr.write(`bench:vm: ${s}\n`);
const STEPS = ['dhcp', 'loader', 'kernel', 'initrd', 'kickstart', 'image', 'verify', 'post', 'flip', 'reboot', 'booted'] as const;
type Step = (typeof STEPS)[number];

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ksvm-bench-'));
  const kexec = (i: number) => (a.finish === 'kexec' ? true : a.finish === 'reboot' ? false : i % 2 === 0);
  const lab = new VmLab({
    nodes,
    cacheDir: VM_CACHE,
    dir,
    firmware: a.firmware as 'bios' | 'uefi',
    loader: ipxe ? 'ipxe' : a['boot-over'] === 'http' ? 'lpxelinux' : 'pxelinux',
    disk: ipxe || a.firmware === 'uefi' ? 'gpt' : 'mbr',
    method: a.method as 'torrent',
    bootOverHttp: a['boot-over'] === 'http',
    memMiB: Number(a.mem),
    kexec,
    log: say,
  });
  const stop = () => void lab.close(a.keep).then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await lab.start();
    const cpuBefore = process.cpuUsage();
    const t0 = Date.now();
    const seen = new Map<string, Partial<Record<Step, number>>>(lab.nodes.map((n) => [n.name, {}]));
    const mark = (n: LabNode, s: Step, at: number) => {
      const m = seen.get(n.name)!;
      if (m[s] === undefined) m[s] = Math.max(0, (at - t0) / 1000);
    };
    say(`reinstall of ${nodes} VMs (method ${a.method}, loader ${a.loader}, firmware ${a.firmware}, boot over ${ipxe ? 'http' : a['boot-over']}, finish ${a.finish})`);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO, 'server/main.ts'), '--data-dir', lab.dataDir, 'reinstall', '--all', '--power', 'command', '--power-command', lab.powerCommand],
      { cwd: REPO, stdio: 'ignore' },
    );
    await new Promise((r) => child.on('close', r));
    const deadline = Date.now() + 30 * 60_000;
    const dnsmasqLog = path.join(dir, 'dnsmasq.log');
    // A VM powers off right after printing its marker: look once more after the last one stopped.
    for (let last = false; !last;) {
      last = !lab.nodes.some((n) => seen.get(n.name)!.booted === undefined && lab.running(n)) || Date.now() >= deadline;
      const now = Date.now();
      const dhcp = fs.existsSync(dnsmasqLog) ? fs.readFileSync(dnsmasqLog, 'utf8') : '';
      for (const n of lab.nodes) {
        if (new RegExp(`DHCPACK\\(\\S+\\) ${n.ip.replace(/\./g, '\\.')} `).test(dhcp)) mark(n, 'dhcp', now);
        if (lab.booted(n)) mark(n, 'booted', now);
      }
      if (!last) await new Promise((r) => setTimeout(r, 250));
    }
    const cpu = process.cpuUsage(cpuBefore);
    const lines = lab.frontendLines();
    for (const n of lab.nodes) {
      const from = (x: FrontendLogLine) => x.peer?.startsWith(`${n.ip}:`) || x.ip === n.ip;
      for (const x of lines) {
        if (!x.time || x.time < t0) continue;
        const file = x.file ?? '';
        if ((x.msg === 'serving static file' || x.msg === 'serving boot file') && from(x)) {
          if (/(pxelinux\.0|syslinux\.efi|undionly\.kpxe|snponly\.efi|ipxe\.efi)$/.test(file)) mark(n, 'loader', x.time);
          if (file.endsWith('vmlinuz')) mark(n, 'kernel', x.time);
          if (file.endsWith('initrd.img')) mark(n, 'initrd', x.time);
        }
        if (x.url?.startsWith('/install/sbin/kickstart.cgi') && x.ip === n.ip && x.status === 200) mark(n, 'kickstart', x.time);
        if (x.node === n.name && x.state === 'downloading') mark(n, 'image', x.time);
        if (x.node === n.name && x.state === 'verifying') mark(n, 'verify', x.time);
        if (x.node === n.name && x.state === 'post') mark(n, 'post', x.time);
        if (x.node === n.name && x.state === 'done') mark(n, 'flip', x.time);
        if (x.msg === 'served pxelinux config' && x.node === n.name && (x.action ?? x.mode) === 'os') mark(n, 'reboot', x.time);
        if (x.msg === 'served iPXE script' && x.node === n.name) {
          // An iPXE ROM fetches no first stage: its script is where its loader step ends.
          if (x.mode === 'install') mark(n, 'loader', x.time);
          if (x.mode === 'os') mark(n, 'reboot', x.time);
        }
      }
    }
    const rows = lab.nodes.map((n, i) => ({ node: n.name, finish: kexec(i) ? 'kexec' : 'reboot', ...seen.get(n.name) }));
    const done = rows.map((r) => (r as Partial<Record<Step, number>>).booted).filter((x): x is number => x !== undefined);
    const result = {
      nodes,
      method: a.method,
      loader: a.loader,
      firmware: a.firmware,
      bootOver: ipxe ? 'http' : a['boot-over'],
      accel: process.env.KICKSWARM_VM_ACCEL === 'kvm' ? 'kvm' : 'tcg',
      booted: done.length,
      makespanSeconds: done.length === nodes ? Math.max(...done) : null,
      benchCpuSeconds: (cpu.user + cpu.system) / 1e6,
      timeline: rows,
    };
    if (a.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const head = ['node', 'finish', ...STEPS];
      process.stdout.write(`${head.map((h) => h.padStart(9)).join(' ')}\n`);
      for (const r of rows) {
        const rec = r as Record<string, unknown>;
        process.stdout.write(
          `${head
            .map((h) => (typeof rec[h] === 'number' ? (rec[h] as number).toFixed(1) : String(rec[h] ?? '-')))
            .map((s) => s.padStart(9))
            .join(' ')}\n`,
        );
      }
      process.stdout.write(`makespan ${result.makespanSeconds?.toFixed(1) ?? 'n/a'} s (${done.length}/${nodes} booted their installed disks; ${result.accel})\n`);
    }
    if (done.length !== nodes) process.exitCode = 1;
  } finally {
    await lab.close(a.keep);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:vm: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
