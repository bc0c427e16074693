/**
 * An open QED image: two-level table lookup, allocation at the end of the file
 * in QEMU's order (data clusters first, then a new L2 table, then the L1
 * entry), copy-on-write from the backing file for partly written clusters, and
 * the need-check flag set before the first allocating write of an image
 * without backing file (QEMU flushes instead when there is one) and cleared on
 * a clean close.
 */
import { BlockError } from '../../errors.js';
import { checkRange, type BlockNode, type BlockStatus, type ImageNode, type ProtocolNode } from '../../node.js';
import { backingStatus, readBacking } from '../backing-read.js';
import {
  clusterOffsetValid, decodeHeader, encodeHeader, F_BACKING_FILE, F_BACKING_NO_PROBE, F_NEED_CHECK, HEADER_BYTES,
  tableOffsetValid, ZERO_CLUSTER, type QedHeader,
} from './header.js';

type Kind = 'unallocated' | 'zero' | 'data';
interface Lookup { kind: Kind; host: number; l1Index: number; l2Index: number }

const L2_CACHE_TABLES = 32;

export class QedImage implements ImageNode {
  readonly driver = 'qed';
  backingFile?: string;
  backingFormat?: string;
  backing?: BlockNode | null;
  check?: ImageNode['check'];
  readonly clusterSize: number;
  /** entries per table */
  readonly entries: number;
  readonly tableBytes: number;
  /** file length rounded down to a cluster: where the next allocation goes */
  fileEnd: number;
  l1: Buffer;
  private readonly l2Cache = new Map<number, Buffer>();

  private constructor(readonly file: ProtocolNode, public header: QedHeader, l1: Buffer) {
    this.clusterSize = header.clusterSize;
    this.tableBytes = header.tableSize * header.clusterSize;
    this.entries = this.tableBytes / 8;
    this.fileEnd = Math.floor(file.size() / header.clusterSize) * header.clusterSize;
    this.l1 = l1;
  }

  static async open(file: ProtocolNode, readOnly: boolean): Promise<QedImage> {
    const head = await file.read(0, Math.min(HEADER_BYTES, file.size()));
    const h = decodeHeader(head, file.size());
    const l1 = await file.read(h.l1TableOffset, h.tableSize * h.clusterSize);
    const img = new QedImage(file, h, l1);
    if (h.features & F_BACKING_FILE) {
      const name = await file.read(h.backingNameOffset, h.backingNameSize);
      img.backingFile = name.toString('utf8');
      if (h.features & F_BACKING_NO_PROBE) img.backingFormat = 'raw';
    }
    // Unknown autoclear bits say an older program wrote the image: a writer clears them.
    if (!readOnly && h.autoclearFeatures !== 0n) {
      h.autoclearFeatures = 0n;
      await img.writeHeader();
    }
    return img;
  }

  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  /** the need-check flag: set while allocating writes may have left tables behind */
  get needsCheck(): boolean { return (this.header.features & F_NEED_CHECK) !== 0n; }
  /** qemu-img info's dirty-flag: QEMU 7.2 never reports the need-check flag there for qed */
  readonly dirty = false;
  size(): number { return this.header.imageSize; }

  async writeHeader(): Promise<void> {
    // Only the fixed fields: the backing name after them stays as it is.
    await this.file.write(0, encodeHeader(this.header));
  }

  l1Entry(i: number): number { return Number(this.l1.readBigUInt64LE(i * 8)); }

  /** Read (through the cache) the L2 table at `offset`, which the caller has validated. */
  async l2Table(offset: number): Promise<Buffer> {
    const hit = this.l2Cache.get(offset);
    if (hit) return hit;
    const t = await this.file.read(offset, this.tableBytes);
    if (this.l2Cache.size >= L2_CACHE_TABLES) this.l2Cache.delete(this.l2Cache.keys().next().value as number);
    this.l2Cache.set(offset, t);
    return t;
  }

  private async lookup(cluster: number): Promise<Lookup> {
    const l1Index = Math.floor(cluster / this.entries);
    const l2Index = cluster % this.entries;
    const l2Off = this.l1Entry(l1Index);
    if (l2Off === 0) return { kind: 'unallocated', host: 0, l1Index, l2Index };
    if (!tableOffsetValid(this.header, this.fileEnd, l2Off)) {
      throw new BlockError('corrupt', `l1_table[${l1Index}]: L2 table offset ${l2Off} is invalid`, { field: 'l1_table', offset: l2Off });
    }
    const t = await this.l2Table(l2Off);
    const e = Number(t.readBigUInt64LE(l2Index * 8));
    if (e === 0) return { kind: 'unallocated', host: 0, l1Index, l2Index };
    if (e === ZERO_CLUSTER) return { kind: 'zero', host: 0, l1Index, l2Index };
    if (!clusterOffsetValid(this.header, this.fileEnd, e)) {
      throw new BlockError('corrupt', `l2_table[${l2Index}] of L1 entry ${l1Index}: data offset ${e} is invalid`, { field: 'l2_table', offset: e });
    }
    return { kind: 'data', host: e, l1Index, l2Index };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    let pos = 0;
    const cs = this.clusterSize;
    while (pos < length) {
      const g = offset + pos;
      const cl = Math.floor(g / cs);
      const inCl = g - cl * cs;
      const n = Math.min(length - pos, cs - inCl);
      const e = await this.lookup(cl);
      if (e.kind === 'data') {
        if (this.file.readInto) await this.file.readInto(out, pos, e.host + inCl, n);
        else (await this.file.read(e.host + inCl, n)).copy(out, pos);
      } else if (e.kind === 'unallocated' && this.backing) {
        (await readBacking(this.backing, g, n)).copy(out, pos);
      }
      pos += n;
    }
    return out;
  }

  private async markNeedCheck(): Promise<void> {
    // With a backing file QEMU orders writes with flushes instead of the flag.
    if (this.backing || this.needsCheck) return;
    this.header.features |= F_NEED_CHECK;
    await this.writeHeader();
  }

  /** Runs of clusters with the same kind inside one L2 table (and, for data, contiguous on the host). */
  private async run(firstCluster: number, lastCluster: number): Promise<{ e: Lookup; count: number }> {
    const e = await this.lookup(firstCluster);
    let count = 1;
    const tableEnd = (e.l1Index + 1) * this.entries;
    while (firstCluster + count <= lastCluster && firstCluster + count < tableEnd) {
      const n = await this.lookup(firstCluster + count);
      if (n.kind !== e.kind || (e.kind === 'data' && n.host !== e.host + count * this.clusterSize)) break;
      count++;
    }
    return { e, count };
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: image is read-only`);
    await this.writeRange(offset, data.length, data);
  }

  /** Write `data` (or, with null, zero the whole clusters) over [offset, offset+length). */
  private async writeRange(offset: number, length: number, data: Buffer | null): Promise<void> {
    const cs = this.clusterSize;
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const cl = Math.floor(g / cs);
      const lastCl = Math.floor((offset + length - 1) / cs);
      const { e, count } = await this.run(cl, lastCl);
      const runEnd = Math.min(offset + length, (cl + count) * cs);
      const n = runEnd - g;
      const piece = data ? data.subarray(pos, pos + n) : null;
      if (e.kind === 'data') {
        await this.file.write(e.host + (g - cl * cs), piece ?? Buffer.alloc(n));
      } else if (!piece) {
        if (e.kind === 'unallocated') {
          await this.markNeedCheck();
          await this.setL2(cl, count, () => ZERO_CLUSTER);
        }
      } else {
        const nClusters = Math.ceil((g - cl * cs + n) / cs);
        const host = this.fileEnd;
        this.fileEnd += nClusters * cs;
        await this.markNeedCheck();
        // Whole clusters: untouched head and tail come from the backing file (or are zeroes).
        const head = g - cl * cs;
        const tailStart = g + n;
        const tailEnd = (cl + nClusters) * cs;
        const buf = Buffer.alloc(nClusters * cs);
        if (head > 0) (await readBacking(this.backing, cl * cs, head)).copy(buf, 0);
        if (tailEnd > tailStart) (await readBacking(this.backing, tailStart, tailEnd - tailStart)).copy(buf, head + n);
        piece.copy(buf, head);
        await this.file.write(host, buf);
        await this.setL2(cl, nClusters, (i) => host + i * cs);
      }
      pos += n;
    }
  }

  /** Point `count` L2 entries from guest cluster `cl` at `value(i)`, allocating the L2 table if needed. */
  private async setL2(cl: number, count: number, value: (i: number) => number): Promise<void> {
    const l1Index = Math.floor(cl / this.entries);
    const first = cl % this.entries;
    let l2Off = this.l1Entry(l1Index);
    let table: Buffer;
    const fresh = l2Off === 0;
    if (fresh) {
      l2Off = this.fileEnd;
      this.fileEnd += this.tableBytes;
      table = Buffer.alloc(this.tableBytes);
    } else {
      table = await this.l2Table(l2Off);
    }
    for (let i = 0; i < count; i++) table.writeBigUInt64LE(BigInt(value(i)), (first + i) * 8);
    if (fresh) {
      await this.file.write(l2Off, table);
      this.l2Cache.set(l2Off, table);
      this.l1.writeBigUInt64LE(BigInt(l2Off), l1Index * 8);
      await this.file.write(this.header.l1TableOffset + l1Index * 8, this.l1.subarray(l1Index * 8, l1Index * 8 + 8));
    } else {
      await this.file.write(l2Off + first * 8, table.subarray(first * 8, (first + count) * 8));
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: image is read-only`);
    // QEMU zeroes whole clusters in the tables; unaligned head and tail are ordinary writes of zeroes.
    const cs = this.clusterSize;
    const end = offset + length;
    const a = Math.min(end, Math.ceil(offset / cs) * cs);
    let b = Math.floor(end / cs) * cs;
    if (b < a) b = a;
    if (a > offset) await this.writeRange(offset, a - offset, Buffer.alloc(a - offset));
    if (b > a) await this.writeRange(a, b - a, null);
    if (end > b && b >= a) await this.writeRange(b, end - b, Buffer.alloc(end - b));
  }

  /** QED has no discard: QEMU's block layer succeeds and leaves the data as it is. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this, offset, length);
    const cs = this.clusterSize;
    const cl = Math.floor(offset / cs);
    const end = offset + length;
    const { e, count } = await this.run(cl, Math.floor((end - 1) / cs));
    const len = Math.min(end, (cl + count) * cs) - offset;
    if (e.kind === 'data') return { offset, length: len, data: true, zero: false, present: true, depth: 0, hostOffset: e.host + (offset - cl * cs) };
    if (e.kind === 'zero') return { offset, length: len, data: false, zero: true, present: true, depth: 0 };
    return backingStatus(this.backing, offset, len);
  }

  async flush(): Promise<void> { await this.file.flush(); }

  async close(): Promise<void> {
    if (!this.readOnly && this.needsCheck) {
      // A clean close: the tables are on disk, so no check is needed on the next open.
      await this.file.flush();
      this.header.features &= ~F_NEED_CHECK;
      await this.writeHeader();
    }
    await this.backing?.close();
    await this.file.close();
  }

  /** Trust-nothing accessor for check: the raw L1 entry list. */
  l1Entries(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.entries; i++) out.push(this.l1Entry(i));
    return out;
  }

  invalidateCache(): void { this.l2Cache.clear(); }
}
