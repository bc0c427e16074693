/**
 * qcow2 reference counts: a refcount table of refcount-block offsets, each
 * block an array of 2^refcount_order-bit counters, one per host cluster.
 *
 * Allocation follows QEMU's algorithm step for step (a first-fit scan from a
 * free-cluster cursor, self-describing refcount blocks, a table that grows by
 * half again at the end of the file) because users compare our images with
 * qemu-img's byte for byte.
 */
import { BlockError } from '../../errors.js';
import type { BlockNode } from '../../node.js';

const AGAIN = Symbol('again');

export interface RefcountGeometry {
  clusterBits: number;
  refcountOrder: number;
}

export class Refcounts {
  readonly clusterSize: number;
  readonly clusterBits: number;
  readonly order: number;
  /** counters per refcount block */
  readonly blockEntries: number;
  readonly blockBits: number;
  readonly maxRefcount: number;
  table: number[];
  tableOffset: number;
  /** refcount blocks loaded so far, by host offset */
  private blocks = new Map<number, Buffer>();
  private dirty = new Map<number, [number, number]>();
  /** QEMU's free_cluster_index: where the next first-fit scan starts */
  freeClusterIndex = 0;
  /** called when the table moves, to rewrite the header fields */
  onTableMoved?: (offset: number, clusters: number) => Promise<void>;
  /** clusters whose count dropped to zero, for the driver to zero out (QEMU punches holes) */
  freed: Array<[number, number]> = [];

  constructor(private file: BlockNode, geo: RefcountGeometry, tableOffset: number, table: number[]) {
    this.clusterBits = geo.clusterBits;
    this.clusterSize = 2 ** geo.clusterBits;
    this.order = geo.refcountOrder;
    this.blockBits = geo.clusterBits + 3 - geo.refcountOrder;
    this.blockEntries = 2 ** this.blockBits;
    this.maxRefcount = geo.refcountOrder === 6 ? Number.MAX_SAFE_INTEGER : 2 ** (2 ** geo.refcountOrder) - 1;
    this.tableOffset = tableOffset;
    this.table = table;
  }

  static async load(file: BlockNode, geo: RefcountGeometry, tableOffset: number, clusters: number): Promise<Refcounts> {
    const raw = await file.read(tableOffset, clusters * 2 ** geo.clusterBits);
    const table: number[] = new Array(raw.length / 8);
    for (let i = 0; i < table.length; i++) table[i] = Number(raw.readBigUInt64BE(i * 8) & 0xfffffffffffffe00n);
    return new Refcounts(file, geo, tableOffset, table);
  }

  // ---- counters inside one block -------------------------------------------------

  private getIn(block: Buffer, i: number): number {
    switch (this.order) {
      case 0: return (block[i >> 3] >> (i & 7)) & 1;
      case 1: return (block[i >> 2] >> ((i & 3) * 2)) & 3;
      case 2: return (block[i >> 1] >> ((i & 1) * 4)) & 15;
      case 3: return block[i];
      case 4: return block.readUInt16BE(i * 2);
      case 5: return block.readUInt32BE(i * 4);
      default: return Number(block.readBigUInt64BE(i * 8));
    }
  }

  private setIn(block: Buffer, i: number, v: number): void {
    switch (this.order) {
      case 0: block[i >> 3] = (block[i >> 3] & ~(1 << (i & 7))) | (v << (i & 7)); break;
      case 1: block[i >> 2] = (block[i >> 2] & ~(3 << ((i & 3) * 2))) | (v << ((i & 3) * 2)); break;
      case 2: block[i >> 1] = (block[i >> 1] & ~(15 << ((i & 1) * 4))) | (v << ((i & 1) * 4)); break;
      case 3: block[i] = v; break;
      case 4: block.writeUInt16BE(v, i * 2); break;
      case 5: block.writeUInt32BE(v, i * 4); break;
      default: block.writeBigUInt64BE(BigInt(v), i * 8);
    }
  }

  private byteRange(i: number): [number, number] {
    const bits = 2 ** this.order;
    const start = Math.floor((i * bits) / 8);
    return [start, start + Math.max(1, bits / 8)];
  }

  private markDirty(blockOffset: number, i: number): void {
    const [s, e] = this.byteRange(i);
    const d = this.dirty.get(blockOffset);
    if (d) { d[0] = Math.min(d[0], s); d[1] = Math.max(d[1], e); } else this.dirty.set(blockOffset, [s, e]);
  }

  private async loadBlock(offset: number): Promise<Buffer> {
    let b = this.blocks.get(offset);
    if (!b) {
      b = await this.file.read(offset, this.clusterSize);
      this.blocks.set(offset, b);
    }
    return b;
  }

  /** Refcount of a host cluster; clusters no block covers count zero. */
  async get(clusterIndex: number): Promise<number> {
    const ti = Math.floor(clusterIndex / this.blockEntries);
    if (ti >= this.table.length || !this.table[ti]) return 0;
    const block = await this.loadBlock(this.table[ti]);
    return this.getIn(block, clusterIndex % this.blockEntries);
  }

  /** Write every changed byte range of every block (copies: the blocks keep changing). */
  async flush(): Promise<void> {
    const pending = [...this.dirty];
    this.dirty.clear();
    for (const [off, [s, e]] of pending) {
      await this.file.write(off + s, Buffer.from(this.blocks.get(off)!.subarray(s, e)));
    }
  }

  // ---- allocation, after QEMU's block/qcow2-refcount.c --------------------------

  /** alloc_clusters_noref: first fit of n free clusters from the cursor, without counting them. */
  async allocNoref(n: number): Promise<number> {
    let found = 0;
    while (found < n) {
      const idx = this.freeClusterIndex++;
      if ((await this.get(idx)) !== 0) found = 0; else found++;
    }
    return (this.freeClusterIndex - n) * this.clusterSize;
  }

  /** Allocate n contiguous clusters with refcount 1; returns the host offset. */
  async alloc(n: number): Promise<number> {
    for (;;) {
      const offset = await this.allocNoref(n);
      const r = await this.update(offset, n, 1);
      if (r !== AGAIN) return offset;
    }
  }

  /** Take a reference on n clusters starting at a given offset (qcow2_alloc_clusters_at semantics not needed). */
  async increment(offset: number, n: number): Promise<void> {
    for (;;) {
      const r = await this.update(offset, n, 1);
      if (r !== AGAIN) return;
    }
  }

  /** update_refcount over the clusters a byte range touches; false when QEMU would return -EAGAIN. */
  async tryIncrementBytes(offset: number, bytes: number): Promise<boolean> {
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.floor((offset + bytes - 1) / this.clusterSize);
    return (await this.update(first * this.clusterSize, last - first + 1, 1)) !== AGAIN;
  }

  /** Add `addend` to n clusters from `offset` (negative: drop references), allocating refcount blocks as needed. */
  async addRange(offset: number, n: number, addend: number): Promise<void> {
    for (;;) {
      const r = await this.update(offset, n, addend);
      if (r !== AGAIN) return;
    }
  }

  async decrement(offset: number, n: number): Promise<void> {
    await this.update(offset, n, -1);
  }

  /** update_refcount: add to n clusters; AGAIN when refcount metadata had to be allocated first. */
  private async update(offset: number, n: number, addend: number): Promise<void | typeof AGAIN> {
    const first = Math.floor(offset / this.clusterSize);
    let block: Buffer | null = null;
    let blockOffset = 0;
    let oldTi = -1;
    for (let idx = first; idx < first + n; idx++) {
      const ti = Math.floor(idx / this.blockEntries);
      if (ti !== oldTi) {
        const r = await this.blockFor(idx);
        if (r === AGAIN) {
          // The caller restarts its search for free clusters; QEMU lets it try
          // the same ones first. Undo what this call already did.
          if (this.freeClusterIndex > first) this.freeClusterIndex = first;
          if (idx > first) await this.update(offset, idx - first, -addend);
          return AGAIN;
        }
        [blockOffset, block] = r;
        oldTi = ti;
      }
      const i = idx % this.blockEntries;
      const v = this.getIn(block!, i) + addend;
      if (v < 0 || v > this.maxRefcount) {
        throw new BlockError('corrupt', `refcount of cluster ${idx} would become ${v} (allowed 0..${this.maxRefcount})`, { offset: idx * this.clusterSize });
      }
      if (v === 0) {
        if (idx < this.freeClusterIndex) this.freeClusterIndex = idx;
        this.freed.push([idx * this.clusterSize, this.clusterSize]);
      }
      this.setIn(block!, i, v);
      this.markDirty(blockOffset, i);
    }
  }

  /** alloc_refcount_block: the block covering a cluster, allocating it (and growing the table) if needed. */
  private async blockFor(clusterIndex: number): Promise<[number, Buffer] | typeof AGAIN> {
    const ti = Math.floor(clusterIndex / this.blockEntries);
    if (ti < this.table.length && this.table[ti]) {
      return [this.table[ti], await this.loadBlock(this.table[ti])];
    }
    const newBlock = await this.allocNoref(1);
    const newIdx = newBlock / this.clusterSize;
    if (Math.floor(newIdx / this.blockEntries) === ti) {
      // The new block describes itself.
      const b = Buffer.alloc(this.clusterSize);
      this.setIn(b, newIdx % this.blockEntries, 1);
      this.blocks.set(newBlock, b);
    } else {
      // Counted in another block, which may itself need allocating first.
      if ((await this.update(newBlock, 1, 1)) === AGAIN) return AGAIN;
      this.blocks.set(newBlock, Buffer.alloc(this.clusterSize));
    }
    await this.file.write(newBlock, this.blocks.get(newBlock)!);
    this.dirty.delete(newBlock);
    if (ti < this.table.length) {
      this.table[ti] = newBlock;
      const e = Buffer.alloc(8);
      e.writeBigUInt64BE(BigInt(newBlock));
      await this.file.write(this.tableOffset + ti * 8, e);
      return AGAIN;
    }
    // The table is full: build a new, self-describing table plus blocks at the end.
    const blocksUsed = Math.ceil(Math.max(clusterIndex + 1, newIdx + 1) / this.blockEntries);
    await this.refcountArea(blocksUsed * this.blockEntries * this.clusterSize, 0, false, ti, newBlock);
    return AGAIN;
  }

  /**
   * qcow2_refcount_area: from start (the end of the image) create a new refcount
   * table and the blocks that cover it and `additional` clusters beyond it.
   * Returns where the area ends.
   */
  async refcountArea(start: number, additional: number, exact: boolean, newIndex: number, newOffset: number): Promise<number> {
    const cs = this.clusterSize;
    const total = refcountMetadata(start / cs + additional, cs, this.order, !exact).blocks;
    const areaIndex = Math.floor(start / cs / this.blockEntries);
    let tableSize = exact ? total : total + Math.ceil(total / 2);
    tableSize = Math.ceil(tableSize / (cs / 8)) * (cs / 8);
    const tableClusters = (tableSize * 8) / cs;
    if (tableSize * 8 > 8 * 1024 * 1024 * 8) throw new BlockError('io', 'refcount table would exceed its maximum size');
    const newTable: number[] = new Array(tableSize).fill(0);
    for (let i = 0; i < Math.min(tableSize, this.table.length); i++) newTable[i] = this.table[i];
    if (newOffset) newTable[newIndex] = newOffset;
    let additionalBlocks = 0;
    for (let i = areaIndex; i < total; i++) if (!newTable[i]) additionalBlocks++;
    const tableOffset = start + additionalBlocks * cs;
    const end = tableOffset + tableClusters * cs;
    let blockOffset = start;
    for (let i = areaIndex; i < total; i++) {
      let off = newTable[i];
      let block: Buffer;
      if (off) block = await this.loadBlock(off);
      else {
        off = blockOffset;
        block = Buffer.alloc(cs);
        this.blocks.set(off, block);
        this.dirty.set(off, [0, cs]);
        newTable[i] = off;
        blockOffset += cs;
      }
      const firstCovered = i * this.blockEntries * cs;
      if (firstCovered < end) {
        let j = firstCovered < start ? (start - firstCovered) / cs : 0;
        const endIndex = Math.min((end - firstCovered) / cs, this.blockEntries);
        for (; j < endIndex; j++) {
          this.setIn(block, j, 1);
          this.markDirty(off, j);
        }
      }
    }
    await this.flush();
    const raw = Buffer.alloc(tableSize * 8);
    newTable.forEach((v, i) => raw.writeBigUInt64BE(BigInt(v), i * 8));
    await this.file.write(tableOffset, raw);
    const oldOffset = this.tableOffset;
    const oldSize = this.table.length;
    this.table = newTable;
    this.tableOffset = tableOffset;
    await this.onTableMoved?.(tableOffset, tableClusters);
    await this.decrement(oldOffset, Math.ceil((oldSize * 8) / cs));
    return end;
  }

  /** Forget cached blocks (after check -r rewrote them on disk). */
  invalidate(): void {
    this.blocks.clear();
    this.dirty.clear();
  }
}

/**
 * qcow2_refcount_metadata_size: the fixed point of refcount blocks and table
 * clusters needed to count `clusters` clusters plus themselves.
 */
export function refcountMetadata(clusters: number, clusterSize: number, order: number, generous: boolean): { blocks: number; table: number; bytes: number } {
  const perTableCluster = clusterSize / 8;
  const perBlock = (clusterSize * 8) / 2 ** order;
  let table = 0;
  let blocks = 0;
  let last: number;
  let n = 0;
  do {
    last = n;
    blocks = Math.ceil((clusters + table + blocks) / perBlock);
    table = Math.ceil(blocks / perTableCluster);
    n = clusters + blocks + table;
    if (n === last && generous) {
      clusters += Math.ceil(table / 2);
      n = 0;
      generous = false;
    }
  } while (n !== last);
  return { blocks, table, bytes: (blocks + table) * clusterSize };
}
