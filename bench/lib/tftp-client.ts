/**
 * A minimal TFTP reader (RFC 1350 with RFC 2347 options, RFC 2348 blksize and
 * RFC 2349 tsize) that behaves like PXE firmware: lock-step (one DATA block in
 * flight, no windowsize), blksize 1468 and tsize requested, its own UDP socket
 * bound to a chosen source address, and the last packet (RRQ or ACK) resent
 * on silence with exponential back-off until `retries` resends in a row went
 * unanswered.
 *
 * Resolves with what happened on the wire; rejects with a TftpGetError that
 * says which block it was waiting for, after how many resends, or which ERROR
 * packet the server sent.
 */
import dgram from 'node:dgram';

const OP = { RRQ: 1, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export interface TftpGetOptions {
  host: string;
  port: number;
  file: string;
  /** Source address to bind (any 127.x.y.z on Linux loopback); default: any. */
  localAddress?: string;
  /** Requested block size (default 1468); 0 sends no blksize option. */
  blksize?: number;
  /** Silence before the first resend (default 1000 ms); doubles on each resend, up to `maxTimeoutMs`. */
  timeoutMs?: number;
  maxTimeoutMs?: number;
  /** Resends in a row without progress before giving up (default 5). */
  retries?: number;
  /** Receives each new block's payload in order. */
  onData?: (payload: Buffer) => void;
}

export interface TftpGetResult {
  bytes: number;
  blocks: number;
  blksize: number;
  /** Size announced in the OACK (tsize), if any. */
  tsize?: number;
  /** Packets this client resent after a silence. */
  resends: number;
  /** The previous DATA block received again (the server resent it); acknowledged again, as RFC 1350 asks. */
  duplicates: number;
  /** Longest silence between two new blocks, milliseconds. */
  longestStallMs: number;
}

export class TftpGetError extends Error {
  constructor(
    message: string,
    /** `timeout`, `server-error`, `protocol` or `socket`. */
    readonly kind: 'timeout' | 'server-error' | 'protocol' | 'socket',
    readonly partial: { bytes: number; blocks: number; resends: number },
  ) {
    super(message);
    this.name = 'TftpGetError';
  }
}

function rrq(file: string, options: Record<string, string>): Buffer {
  const parts = [Buffer.from([0, OP.RRQ]), Buffer.from(`${file}\0octet\0`, 'latin1')];
  for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}

function ack(block: number): Buffer {
  return Buffer.from([0, OP.ACK, block >> 8, block & 255]);
}

function errorPacket(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([0, OP.ERROR, 0, code]), Buffer.from(`${message}\0`, 'latin1')]);
}

function parseOack(msg: Buffer): Record<string, string> {
  const fields = msg.toString('latin1', 2).split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]) out[fields[i]!.toLowerCase()] = fields[i + 1]!;
  return out;
}

/** Reads one file; see the module comment. */
export function tftpGet(o: TftpGetOptions): Promise<TftpGetResult> {
  const wantBlksize = o.blksize ?? 1468;
  const timeout0 = o.timeoutMs ?? 1000;
  const maxTimeout = o.maxTimeoutMs ?? 8000;
  const retries = o.retries ?? 5;
  const socket = dgram.createSocket('udp4');
  const r: TftpGetResult = { bytes: 0, blocks: 0, blksize: 512, resends: 0, duplicates: 0, longestStallMs: 0 };
  let tid: { address: string; port: number } | undefined;
  let expected = 1;
  let last = rrq(o.file, wantBlksize ? { blksize: String(wantBlksize), tsize: '0' } : {});
  let timeout = timeout0;
  let tries = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastProgress = Date.now();
  let settled = false;

  return new Promise<TftpGetResult>((resolve, reject) => {
    const finish = (err?: TftpGetError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(r);
    };
    const fail = (kind: TftpGetError['kind'], message: string) => finish(new TftpGetError(`${o.file}: ${message}`, kind, { bytes: r.bytes, blocks: r.blocks, resends: r.resends }));
    const send = (buf: Buffer, then?: () => void) => {
      const dest = tid ?? { address: o.host, port: o.port };
      socket.send(buf, dest.port, dest.address, (e) => (e ? fail('socket', `send failed: ${e.message}`) : then?.()));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (tries >= retries) return fail('timeout', `no answer while waiting for block ${expected} after ${tries} resends (${r.blocks} blocks received)`);
        tries++;
        r.resends++;
        timeout = Math.min(maxTimeout, timeout * 2);
        send(last);
        arm();
      }, timeout);
    };
    const progress = () => {
      const now = Date.now();
      r.longestStallMs = Math.max(r.longestStallMs, now - lastProgress);
      lastProgress = now;
      tries = 0;
      timeout = timeout0;
    };
    const acknowledge = (block: number) => {
      last = ack(block);
      send(last);
      arm();
    };

    socket.on('error', (e) => fail('socket', e.message));
    socket.on('message', (msg, rinfo) => {
      if (settled) return;
      if (tid && (rinfo.address !== tid.address || rinfo.port !== tid.port)) {
        socket.send(errorPacket(5, 'Unknown transfer ID'), rinfo.port, rinfo.address);
        return;
      }
      if (msg.length < 4) return fail('protocol', `runt packet of ${msg.length} bytes`);
      const op = msg.readUInt16BE(0);
      if (op === OP.ERROR) return fail('server-error', `server sent ERROR ${msg.readUInt16BE(2)}: ${msg.toString('latin1', 4).replace(/\0.*$/s, '')}`);
      if (!tid) {
        tid = { address: rinfo.address, port: rinfo.port };
        if (op === OP.OACK) {
          const opts = parseOack(msg);
          if (opts.blksize) r.blksize = Number(opts.blksize);
          if (opts.tsize) r.tsize = Number(opts.tsize);
          progress();
          return acknowledge(0);
        }
      }
      if (op === OP.OACK) {
        if (expected === 1) acknowledge(0);
        return;
      }
      if (op !== OP.DATA) return fail('protocol', `unexpected opcode ${op}`);
      const block = msg.readUInt16BE(2);
      if (block !== expected) {
        if (block !== ((expected - 1) & 0xffff)) return;
        r.duplicates++;
        send(ack(block));
        return;
      }
      const payload = msg.subarray(4);
      o.onData?.(payload);
      r.bytes += payload.length;
      r.blocks++;
      expected = (expected + 1) & 0xffff;
      progress();
      if (payload.length < r.blksize) {
        clearTimeout(timer);
        return send(ack(block), () => finish());
      }
      acknowledge(block);
    });
    socket.bind(0, o.localAddress, () => {
      send(last);
      arm();
    });
  });
}
