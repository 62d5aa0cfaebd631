import { expect } from 'chai';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { parseWires } from '../../protocol/webtorrent-private.js';
import type { Torrent } from '../../protocol/webtorrent.js';

type TestWire = EventEmitter & { _write(data: Uint8Array, cb: (err: Error | null) => void): void; destroy(): void };
const { default: Wire } = (await import('bittorrent-protocol' as string)) as { default: new () => TestWire };

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const message = (id: number, payload: Buffer) => Buffer.concat([u32(payload.length + 1), Buffer.from([id]), payload]);

/** A handshake, then HAVEs and PIECE messages of several sizes. */
function stream(): { bytes: Buffer; blocks: Buffer[] } {
  const handshake = Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), crypto.randomBytes(20), crypto.randomBytes(20)]);
  const parts: Buffer[] = [handshake];
  const blocks: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    parts.push(message(4, u32(i)));
    const block = crypto.randomBytes(i % 3 === 0 ? 16384 : 1 + ((i * 7919) % 20000));
    blocks.push(block);
    parts.push(message(7, Buffer.concat([u32(i), u32(0), block])));
  }
  return { bytes: Buffer.concat(parts), blocks };
}

/** Feeds `bytes` to a wire in pieces of the given sizes (cycled) and records what it parsed. */
function parse(bytes: Buffer, sizes: number[], patched: boolean): { haves: number[]; pieces: Buffer[] } {
  const wire = new Wire();
  if (patched) {
    const torrent = new EventEmitter();
    parseWires(torrent as unknown as Torrent);
    torrent.emit('wire', wire);
  }
  const haves: number[] = [];
  const pieces: Buffer[] = [];
  wire.on('have', (i: number) => haves.push(i));
  wire.on('piece', (_i: number, _o: number, b: Uint8Array) => pieces.push(Buffer.from(b)));
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = sizes[k % sizes.length]!;
    wire._write(bytes.subarray(at, at + n), () => undefined);
    at += n;
  }
  wire.destroy();
  return { haves, pieces };
}

describe('webtorrent private API: parseWires', () => {
  it('parses exactly what the library parses, however the bytes are split across reads', () => {
    const { bytes, blocks } = stream();
    const reference = parse(bytes, [bytes.length], false);
    expect(reference.pieces).to.deep.equal(blocks);
    for (const sizes of [[1], [7, 3], [65536], [16397, 13], [100_000, 5, 70_000], [bytes.length]]) {
      expect(parse(bytes, sizes, true), `reads of ${sizes.join('/')}`).to.deep.equal(reference);
    }
  });

  it('hands a message inside one read to the parser as a view of that read (the library copies every read after a split)', () => {
    const { bytes } = stream();
    const split = 68 + 9 + 13 + 5000; // inside the first PIECE message
    const views = (patched: boolean): boolean[] => {
      const wire = new Wire();
      if (patched) {
        const torrent = new EventEmitter();
        parseWires(torrent as unknown as Torrent);
        torrent.emit('wire', wire);
      }
      const seen: boolean[] = [];
      wire.on('piece', (_i: number, _o: number, b: Uint8Array) => seen.push(b.buffer === bytes.buffer));
      wire._write(bytes.subarray(0, split), () => undefined);
      wire._write(bytes.subarray(split), () => undefined);
      wire.destroy();
      return seen;
    };
    const patched = views(true);
    expect(patched).to.have.length(40);
    expect(patched.slice(1).every(Boolean), 'every message after the split is a view').to.equal(true);
    expect(views(false).slice(1).some(Boolean), 'the library copies them').to.equal(false);
  });
});
