/**
 * What a simulated node does at PXE time: asks the frontend's TFTP server
 * for `pxelinux.cfg/01-<mac>` from its own address (plain RFC 1350, 512-byte
 * blocks) and reads its kernel command line. The demo hands the install
 * session token found there to `kickswarm-install run --session`, exactly as a
 * real node's boot environment passes `kickswarm.session=` on.
 */
import dgram from 'node:dgram';
import { UnavailableError } from '../../protocol/errors.js';
import { parseCmdline } from '../../protocol/install.js';
import type { Ipv4, Mac } from '../../protocol/node.js';
import { CMDLINE_SESSION } from '../../protocol/session.js';

/** Fetches `name` over TFTP from `host:port`, sending from `localAddress`. */
export function tftpGet(host: string, port: number, name: string, localAddress: string, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const blocks: Buffer[] = [];
    let expected = 1;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(Buffer.concat(blocks));
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => done(new UnavailableError(`TFTP ${name}: no answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    };
    sock.on('error', (e) => done(e));
    sock.on('message', (msg, rinfo) => {
      const op = msg.readUInt16BE(0);
      if (op === 5) return done(new UnavailableError(`TFTP ${name}: ${msg.toString('latin1', 4, Math.max(4, msg.length - 1))}`));
      if (op !== 3 || msg.length < 4) return;
      const block = msg.readUInt16BE(2);
      const ack = Buffer.from([0, 4, msg[2]!, msg[3]!]);
      sock.send(ack, rinfo.port, rinfo.address);
      if (block !== expected) return;
      blocks.push(msg.subarray(4));
      expected = (expected + 1) & 0xffff;
      if (msg.length - 4 < 512) done();
      else arm();
    });
    sock.bind(0, localAddress, () => {
      arm();
      sock.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${name}\0octet\0`, 'latin1')]), port, host);
    });
  });
}

/** The `kickswarm.session=` token in a pxelinux config's `append` line, if any. */
export function sessionInConfig(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*append\s+(.*)$/i.exec(line);
    if (m) {
      const token = parseCmdline(m[1]!)[CMDLINE_SESSION];
      if (token) return token;
    }
  }
  return undefined;
}

/** The node's boot config as it gets it over TFTP from `ip`, and the session token in it. */
export async function bootConfigOf(tftp: { host: string; port: number }, mac: Mac, ip: Ipv4): Promise<{ text: string; session?: string }> {
  const text = (await tftpGet(tftp.host, tftp.port, `pxelinux.cfg/01-${mac.replace(/:/g, '-')}`, ip)).toString('utf8');
  const session = sessionInConfig(text);
  return session ? { text, session } : { text };
}
