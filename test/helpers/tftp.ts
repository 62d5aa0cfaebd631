/** TFTP test helpers: a server on loopback port 0, the npm client, raw datagrams, stock clients. */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import type { Ipv4 } from '../../protocol/node.js';
import { silentLogger, type Logger } from '../../server/log.js';
import { createLibClient } from '../../server/tftp/lib.js';
import { TftpServer } from '../../server/tftp/server.js';
import { PXE_CFG_DIR } from '../../server/pxe/names.js';
import type { PxeService } from '../../server/pxe/service.js';

/** Where `pxelinux.cfg/<name>` comes from in a test: the PXE service or a function (null = not found). */
export type PxeConfigSource = PxeService | ((name: string, remoteIp: Ipv4 | undefined) => Buffer | null);

export async function startTftp(root: string, pxe: PxeConfigSource, log: Logger = silentLogger()): Promise<{ server: TftpServer; port: number }> {
  const file = typeof pxe === 'function' ? pxe : (name: string, ip: Ipv4 | undefined) => pxe.configFor(name, ip);
  const server = new TftpServer({ host: '127.0.0.1', port: 0, root, generated: { dir: PXE_CFG_DIR, file }, log });
  const { port } = await server.start();
  return { server, port };
}

/** Fetches a file with the npm `tftp` client (blksize/windowsize/tsize negotiated). */
export function npmGet(port: number, remote: string, opts: { host?: string } = {}): Promise<Buffer> {
  const client = createLibClient({ host: opts.host ?? '127.0.0.1', port, retries: 2, timeout: 1000 });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    client
      .createGetStream(remote)
      .on('data', (c: Buffer) => chunks.push(c))
      .on('error', reject)
      .on('abort', () => reject(new Error('aborted')))
      .on('end', () => resolve(Buffer.concat(chunks)));
  });
}

export function rrq(name: string | Buffer, mode = 'octet', options: Record<string, string> = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 1]), Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1'), Buffer.from([0]), Buffer.from(`${mode}\0`)];
  for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(`${k}\0${v}\0`));
  return Buffer.concat(parts);
}

export interface Reply {
  msg: Buffer;
  rinfo: dgram.RemoteInfo;
}

export function parseError(msg: Buffer): { code: number; message: string } | undefined {
  if (msg.length < 4 || msg.readUInt16BE(0) !== 5) return undefined;
  const end = msg.indexOf(0, 4);
  return { code: msg.readUInt16BE(2), message: msg.toString('latin1', 4, end < 0 ? msg.length : end) };
}

/** A raw UDP socket on loopback that collects every datagram it receives. */
export class RawPeer {
  readonly socket = dgram.createSocket('udp4');
  readonly received: Reply[] = [];
  private waiters: (() => void)[] = [];

  /** Binds a loopback address (any 127.x.y.z; default 127.0.0.1) and port 0. */
  static async open(address = '127.0.0.1'): Promise<RawPeer> {
    const p = new RawPeer();
    p.socket.on('message', (msg, rinfo) => {
      p.received.push({ msg, rinfo });
      for (const w of p.waiters.splice(0)) w();
    });
    await new Promise<void>((r) => p.socket.bind(0, address, r));
    return p;
  }

  send(buf: Buffer, port: number, address = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(buf, port, address, (e) => (e ? reject(e) : resolve())));
  }

  /** Waits until `count` datagrams have arrived in total, or `ms` passed; returns what arrived. */
  async waitFor(count: number, ms = 1500): Promise<Reply[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < count && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.received.slice();
  }

  close(): void {
    this.socket.close();
  }
}

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && e.code === 'ENOENT') return reject(new Error(`${cmd} is not installed (Debian package: ${cmd === 'atftp' ? 'atftp' : 'tftp-hpa'})`));
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

/** tftp-hpa: plain RFC 1350 (512-byte blocks, no options). */
export function tftpHpaGet(port: number, remote: string, local: string) {
  return run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', remote, local]);
}

/** atftp with blksize negotiated. */
export function atftpGet(port: number, remote: string, local: string, options: string[] = ['--option', 'blksize 1468', '--option', 'tsize 0']) {
  return run('atftp', [...options, '-g', '-r', remote, '-l', local, '127.0.0.1', String(port)]);
}
