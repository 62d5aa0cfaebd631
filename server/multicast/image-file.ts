/**
 * The sender's read side of one `.ksimg`: header and verified index, and the
 * stored (still compressed) bytes of any chunk, with a small cache of the
 * most recently read chunks (resends and merged requests hit it).
 */
import fs from 'node:fs';
import { UnavailableError } from '../../protocol/errors.js';
import { HEADER_SIZE, parseHeader, parseHeaderAndIndex, type ImageHeader, type IndexEntry } from '../../protocol/image-format.js';

export class ImageFile {
  private readonly slot = new Map<number, number>();
  private readonly cache = new Map<number, Buffer>();

  private constructor(
    readonly path: string,
    private readonly fh: fs.promises.FileHandle,
    readonly header: ImageHeader,
    readonly entries: IndexEntry[],
    private readonly cacheChunks: number,
  ) {
    entries.forEach((e, i) => this.slot.set(e.chunkNumber, i));
  }

  /** Opens and verifies header and index (CorruptImageError when damaged). */
  static async open(path: string, cacheChunks = 8): Promise<ImageFile> {
    const fh = await fs.promises.open(path, 'r');
    try {
      const head = Buffer.alloc(HEADER_SIZE);
      await fh.read(head, 0, HEADER_SIZE, 0);
      const all = Buffer.alloc(parseHeader(head).dataOffset);
      await fh.read(all, 0, all.length, 0);
      const { header, entries } = parseHeaderAndIndex(all);
      return new ImageFile(path, fh, header, entries, cacheChunks);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** The index entry of a stored chunk, or undefined (zero chunk, out of range). */
  entry(chunk: number): IndexEntry | undefined {
    const i = this.slot.get(chunk);
    return i === undefined ? undefined : this.entries[i];
  }

  /** The chunk's stored bytes as they are in the file. */
  async stored(e: IndexEntry): Promise<Buffer> {
    const hit = this.cache.get(e.chunkNumber);
    if (hit) return hit;
    const buf = Buffer.allocUnsafe(e.storedLength);
    const { bytesRead } = await this.fh.read(buf, 0, e.storedLength, e.offset);
    if (bytesRead !== e.storedLength) throw new UnavailableError(`image file ${this.path} is truncated at chunk ${e.chunkNumber}`);
    this.cache.set(e.chunkNumber, buf);
    if (this.cache.size > this.cacheChunks) this.cache.delete(this.cache.keys().next().value!);
    return buf;
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.fh.close().catch(() => undefined);
  }
}
