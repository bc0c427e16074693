/**
 * An open qcow2 image: guest reads and writes through L1/L2 tables, copy-on-write
 * from the backing chain, zero clusters, discard, compressed clusters and block
 * status. Allocation order mirrors QEMU's (L2 table first, then the data run) so
 * that the same guest writes produce the same file.
 */
import { decryptData, encryptData, encryptInfo, openQcow2Crypto, type KeyContext, type Qcow2Crypto } from './crypto.js';
import { BlockError, malformed } from '../../errors.js';
import * as path from 'node:path';
import { checkRange, type BlockNode, type BlockStatus, type ImageNode } from '../../node.js';
import type { CheckResult } from '../../../adapters/adapter.js';
import { FileNode } from '../../protocols/file.js';
import { dataFilePermissions, type LockingMode } from '../../protocols/locking.js';
import {
  AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, EXT_BACKING_FORMAT, EXT_BITMAPS, EXT_CRYPTO_HEADER, EXT_DATA_FILE, EXT_FEATURE_TABLE,
  INCOMPAT_COMPRESSION, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_DIRTY, INCOMPAT_EXTL2, INCOMPAT_KNOWN,
  MAX_L1_BYTES, MAX_REFTABLE_BYTES, OFFSET_MASK, OFLAG_COPIED, QCOW2_MAGIC, V2_HEADER_LENGTH, V3_HEADER_LENGTH, buildHeaderTail, parseExtensions, parseHeader, serializeHeader,
  type HeaderExtension, type Qcow2Header,
} from './layout.js';
import { L2Codec, SUBCLUSTERS, type L2Entry } from './l2.js';
import { Refcounts, refcountMetadata } from './refcount.js';
import { compressCluster, decompressCluster } from './compress.js';
import { readSnapshotTable, type Qcow2Snapshot } from './snapshot-table.js';
import { bitmapsInfo, markDirty, readBitmapDirectory, trackingBitmaps, type BitmapDirectory } from './bitmaps.js';

export interface Qcow2OpenOptions {
  readOnly: boolean;
  /** the key of an encrypted image: the command's secrets, the encrypt.key-secret id, and whether I/O follows */
  key?: KeyContext;
  /** opened for check/repair: skip the dirty-bit replay and the corrupt-bit refusal */
  forCheck?: boolean;
  /** the image file's locking option and -U: the data file is locked with them */
  locking?: LockingMode;
  forceShare?: boolean;
}

export class Qcow2Image implements ImageNode {
  readonly driver = 'qcow2';
  readonly filename: string;
  readonly readOnly: boolean;
  header: Qcow2Header;
  readonly clusterSize: number;
  readonly clusterBits: number;
  readonly l2: L2Codec;
  readonly subclusterSize: number;
  l1: number[];
  refcounts: Refcounts;
  extensions: HeaderExtension[];
  backingFile?: string;
  backingFormat?: string;
  dataFileName?: string;
  /** the node guest data lives in: the image file, or the external data file */
  data: BlockNode;
  backing: BlockNode | null = null;
  /** the internal snapshots, in table order, and the table's size in bytes */
  snapshots: Qcow2Snapshot[] = [];
  snapshotsSize = 0;
  /** the persistent dirty bitmaps (null: no bitmaps extension, or one a bitmap-unaware program made stale) */
  bitmaps: BitmapDirectory | null = null;
  /**
   * L2 tables in memory, and the byte ranges changed since they were last
   * written. Like QEMU's writeback metadata caches, changes reach the file on
   * flush, close or eviction, not on every guest write.
   */
  private l2Cache = new Map<number, Buffer>();
  private l2Dirty = new Map<number, [number, number]>();
  private markedDirty = false;
  private lastCompressed: { host: number; data: Buffer } | null = null;
  /** `freed` clusters are zeroed only when the guest discards them (QEMU punches holes then) */
  private zeroFreed = false;

  /**
   * QEMU's qcow2_detect_metadata_preallocation: far more clusters counted than
   * the host actually stores. Block status then asks the file whether a data
   * cluster is a hole, and reports such clusters as zero.
   */
  metadataPreallocated = false;

  /**
   * cache=writethrough: metadata is written back after every request. With
   * lazy_refcounts the refcounts still wait for a clean close, which is what
   * leaves a crashed image dirty.
   */
  writethrough = false;

  private constructor(readonly file: BlockNode, h: Qcow2Header, exts: HeaderExtension[], l1: number[], rc: Refcounts, opts: Qcow2OpenOptions) {
    this.filename = file.filename;
    this.readOnly = opts.readOnly;
    this.header = h;
    this.clusterBits = h.clusterBits;
    this.clusterSize = 2 ** h.clusterBits;
    this.l2 = new L2Codec(h.clusterBits, (h.incompatibleFeatures & INCOMPAT_EXTL2) !== 0);
    this.subclusterSize = this.l2.extended ? this.clusterSize / SUBCLUSTERS : this.clusterSize;
    this.extensions = exts;
    this.l1 = l1;
    this.refcounts = rc;
    this.data = file;
    rc.onTableMoved = async (offset, clusters) => {
      this.header.refcountTableOffset = offset;
      this.header.refcountTableClusters = clusters;
      const b = Buffer.alloc(12);
      b.writeBigUInt64BE(BigInt(offset), 0);
      b.writeUInt32BE(clusters, 8);
      await this.file.write(48, b);
    };
  }

  /** Parse and validate everything a hostile header could get wrong before trusting it. */
  static async open(file: BlockNode, opts: Qcow2OpenOptions): Promise<Qcow2Image> {
    const fileSize = file.size();
    const head = await file.read(0, Math.min(Math.max(fileSize, 0), 2 * 1024 * 1024) || V2_HEADER_LENGTH);
    const h = parseHeader(head);
    if (h.magic !== QCOW2_MAGIC) throw malformed('magic', 'not a qcow2 image (bad magic)', 0);
    if (h.version !== 2 && h.version !== 3) {
      throw new BlockError('unsupported', `Unsupported qcow2 version ${h.version}`, { field: 'version', value: h.version });
    }
    if (h.clusterBits < 9 || h.clusterBits > 21) {
      throw malformed('cluster_bits', `cluster size 2^${h.clusterBits} is out of range (allowed 2^9..2^21)`, 20);
    }
    const cs = 2 ** h.clusterBits;
    if (h.version >= 3) {
      if (h.headerLength < 104 || h.headerLength % 8 !== 0 || h.headerLength > cs) {
        throw malformed('header_length', `${h.headerLength} is invalid (must be a multiple of 8 between 104 and the cluster size)`, 100);
      }
      if (h.refcountOrder > 6) throw malformed('refcount_order', `${h.refcountOrder} is invalid (allowed 0..6)`, 96);
      const unknown = (h.incompatibleFeatures & ~INCOMPAT_KNOWN) >>> 0;
      const unknownHigh = h.featuresHigh?.incompatible ?? 0;
      if (unknown || unknownHigh) {
        const bits = (BigInt(unknownHigh) << 32n) | BigInt(unknown);
        throw new BlockError('unsupported', `Unsupported qcow2 feature(s): incompatible_features bits 0x${bits.toString(16)} are unknown`, { field: 'incompatible_features' });
      }
      if (h.compressionType > 1) throw malformed('compression_type', `unknown compression type ${h.compressionType}`, 104);
      if (h.compressionType !== 0 && !(h.incompatibleFeatures & INCOMPAT_COMPRESSION)) {
        throw malformed('compression_type', 'a compression type other than zlib needs the compression type incompatible bit', 104);
      }
    } else if (h.refcountOrder !== 4) {
      throw malformed('refcount_order', 'version 2 images have 16-bit refcounts', 96);
    }
    if (h.size > 2 ** 55) throw malformed('size', `virtual size ${h.size} is too large`, 24);
    // Tables must lie inside the file and clear of the header cluster.
    const l2Entries = cs / ((h.incompatibleFeatures & INCOMPAT_EXTL2) ? 16 : 8);
    const needL1 = Math.ceil(h.size / (cs * l2Entries));
    if (h.l1Size < needL1) throw malformed('l1_size', `${h.l1Size} entries cannot map a ${h.size}-byte disk (needs ${needL1})`, 36);
    if (h.l1Size * 8 > MAX_L1_BYTES) throw malformed('l1_size', `${h.l1Size} entries exceed QEMU's limit of ${MAX_L1_BYTES / 8}`, 36);
    checkTable('l1_table_offset', h.l1TableOffset, h.l1Size * 8, cs, fileSize, 40);
    if (h.refcountTableClusters === 0) throw malformed('refcount_table_clusters', 'an image needs a refcount table', 56);
    if (h.refcountTableClusters * cs > MAX_REFTABLE_BYTES) {
      throw malformed('refcount_table_clusters', `${h.refcountTableClusters} clusters exceed QEMU's limit of ${MAX_REFTABLE_BYTES} bytes`, 56);
    }
    checkTable('refcount_table_offset', h.refcountTableOffset, h.refcountTableClusters * cs, cs, fileSize, 48);

    const cluster0 = head.length >= cs ? head.subarray(0, cs) : Buffer.concat([head, Buffer.alloc(cs - head.length)]);
    let extEnd = cs;
    if (h.backingFileOffset) {
      if (h.backingFileOffset > cs || h.backingFileSize > 1023 || h.backingFileOffset + h.backingFileSize > cs) {
        throw malformed('backing_file_offset', `backing file name at ${h.backingFileOffset} (+${h.backingFileSize}) must lie in the first cluster and be under 1024 bytes`, 8);
      }
      extEnd = h.backingFileOffset;
    }
    const exts = parseExtensions(cluster0, h.headerLength, extEnd);

    const l1Raw = h.l1Size ? await file.read(h.l1TableOffset, h.l1Size * 8) : Buffer.alloc(0);
    const l1: number[] = new Array(h.l1Size);
    for (let i = 0; i < h.l1Size; i++) {
      const hi = l1Raw.readUInt32BE(i * 8);
      const lo = l1Raw.readUInt32BE(i * 8 + 4);
      const off = (hi & 0x00ffffff) * 4294967296 + (((lo >>> 9) << 9) >>> 0);
      if (off % cs !== 0) throw new BlockError('corrupt', `L1 entry ${i}: L2 table offset 0x${off.toString(16)} is not cluster aligned`, { field: 'l1_table', offset: h.l1TableOffset + i * 8 });
      l1[i] = off;
    }
    const rc = await Refcounts.load(file, { clusterBits: h.clusterBits, refcountOrder: h.refcountOrder }, h.refcountTableOffset, h.refcountTableClusters);
    const img = new Qcow2Image(file, h, exts, l1, rc, opts);
    if (h.cryptMethod !== 0) img.crypto = await openQcow2Crypto(file, h.cryptMethod, exts, opts.key ?? {});
    const table = await readSnapshotTable(file, h.snapshotsOffset, h.nbSnapshots, cs, h.size);
    img.snapshots = table.snapshots;
    img.snapshotsSize = table.size;
    const bext = exts.find((e) => e.type === EXT_BITMAPS);
    if (bext && (h.autoclearFeatures & AUTOCLEAR_BITMAPS)) img.bitmaps = await readBitmapDirectory(file, bext.data, cs);
    for (const e of exts) {
      if (e.type === EXT_BACKING_FORMAT) img.backingFormat = e.data.toString('utf8');
      if (e.type === EXT_DATA_FILE) img.dataFileName = e.data.toString('utf8');
    }
    if (h.backingFileOffset) img.backingFile = cluster0.toString('utf8', h.backingFileOffset, h.backingFileOffset + h.backingFileSize);
    if (img.hasDataFile) {
      img.l2.dataFile = true;
      await img.openDataFile(opts);
    }
    img.metadataPreallocated = !img.hasDataFile && (await detectMetadataPreallocation(img));
    if ((h.incompatibleFeatures & INCOMPAT_CORRUPT) && !opts.readOnly && !opts.forCheck) {
      throw new BlockError('corrupt', 'qcow2: Image is corrupt; cannot be opened read/write', { field: 'incompatible_features' });
    }
    return img;
  }

  /** The external data file named in the header, relative to the image's directory. */
  private async openDataFile(opts: Qcow2OpenOptions): Promise<void> {
    if (!this.dataFileName) {
      throw new BlockError('malformed', 'qcow2: the image needs an external data file (incompatible bit 2) but names none', { field: 'data_file' });
    }
    const target = path.isAbsolute(this.dataFileName) ? this.dataFileName : path.join(path.dirname(this.filename), this.dataFileName);
    let data: FileNode;
    try {
      data = FileNode.open(target, { readOnly: opts.readOnly, locking: opts.locking });
    } catch (e) {
      throw new BlockError('not-found', `Could not open data file '${this.dataFileName}': ${(e as Error).message}`, { field: 'data_file', cause: e });
    }
    try {
      // QEMU locks the data file as a child node of its own (a 'locked' error names that file)
      data.setPermissions(dataFilePermissions({ readOnly: opts.readOnly, forceShare: opts.forceShare }));
    } catch (e) {
      await data.close();
      throw e;
    }
    this.data = data;
  }

  /** qemu-img info's format-specific data for qcow2 */
  /** set when the image is encrypted (crypt_method 1 or 2) */
  crypto: Qcow2Crypto | null = null;
  get encrypted(): boolean {
    return this.crypto !== null;
  }

  formatSpecific(): { type: string; data: Record<string, unknown> } {
    const v3 = this.header.version >= 3;
    const data: Record<string, unknown> = { compat: v3 ? '1.1' : '0.10' };
    if (this.dataFileName) data['data-file'] = this.dataFileName;
    if (this.hasDataFile) data['data-file-raw'] = this.dataFileRaw;
    data['compression-type'] = this.header.compressionType === 1 ? 'zstd' : 'zlib';
    if (v3) data['lazy-refcounts'] = this.lazyRefcounts;
    if (this.bitmaps?.bitmaps.length) data.bitmaps = bitmapsInfo(this.bitmaps);
    data['refcount-bits'] = 2 ** this.header.refcountOrder;
    if (this.crypto) data.encrypt = encryptInfo(this.crypto);
    if (v3) {
      data.corrupt = this.corrupt;
      data['extended-l2'] = this.l2.extended;
    }
    return { type: 'qcow2', data };
  }

  /** Installed by the driver (check.ts needs this class, so it cannot be imported here). */
  check?: (opts: { repair?: 'leaks' | 'all'; log?: (line: string) => void }) => Promise<CheckResult>;

  get dirty(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0;
  }
  get corrupt(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0;
  }
  get lazyRefcounts(): boolean {
    return (this.header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0;
  }
  get hasDataFile(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0;
  }
  get dataFileRaw(): boolean {
    return (this.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0;
  }
  get hasFeatureTable(): boolean {
    return this.extensions.some((e) => e.type === EXT_FEATURE_TABLE);
  }

  size(): number {
    return this.header.size;
  }

  // ---- tables ---------------------------------------------------------------------

  private async loadL2(offset: number): Promise<Buffer> {
    let t = this.l2Cache.get(offset);
    if (!t) {
      if (offset + this.clusterSize > this.file.size()) {
        throw new BlockError('corrupt', `L2 table at 0x${offset.toString(16)} lies beyond the end of the file`, { offset });
      }
      t = await this.file.read(offset, this.clusterSize);
      await this.cacheL2(offset, t);
    }
    return t;
  }

  private async cacheL2(offset: number, table: Buffer): Promise<void> {
    if (this.l2Cache.size >= 256) {
      const victim = this.l2Cache.keys().next().value!;
      await this.writeBackL2(victim);
      this.l2Cache.delete(victim);
    }
    this.l2Cache.set(offset, table);
  }

  private async writeBackL2(offset: number): Promise<void> {
    const d = this.l2Dirty.get(offset);
    if (!d) return;
    this.l2Dirty.delete(offset);
    // a copy: the cached table keeps changing while the write may still be in flight
    await this.file.write(offset + d[0], Buffer.from(this.l2Cache.get(offset)!.subarray(d[0], d[1])));
  }

  /** Write every changed L2 range and refcount block: the metadata part of a flush. */
  async writeBack(): Promise<void> {
    for (const off of [...this.l2Dirty.keys()]) await this.writeBackL2(off);
    await this.refcounts.flush();
  }

  /** Entry for the guest cluster holding `offset`; null table means no L2 table yet. */
  private async lookup(guestCluster: number): Promise<{ table: Buffer | null; index: number }> {
    const l1i = Math.floor(guestCluster / this.l2.entries);
    const l2Off = this.l1[l1i];
    const index = guestCluster % this.l2.entries;
    return { table: l2Off ? await this.loadL2(l2Off) : null, index };
  }

  async entryAt(guestCluster: number): Promise<L2Entry> {
    const { table, index } = await this.lookup(guestCluster);
    if (!table) return { kind: 'unallocated', host: 0, copied: false, compressedSize: 0, allocBits: 0, zeroBits: 0 };
    return this.l2.decode(table, index);
  }

  private async writeL1Entry(i: number, l2Offset: number): Promise<void> {
    this.l1[i] = l2Offset;
    const b = Buffer.alloc(8);
    if (l2Offset) b.writeBigUInt64BE(await this.l1EntryValue(l2Offset));
    await this.file.write(this.header.l1TableOffset + i * 8, b);
  }

  /** An active L1 entry: COPIED when the L2 table is not shared with a snapshot (refcount 1). */
  async l1EntryValue(l2Offset: number): Promise<bigint> {
    if (!l2Offset) return 0n;
    const copied = (await this.refcounts.get(l2Offset / this.clusterSize)) === 1;
    return BigInt(l2Offset) | (copied ? OFLAG_COPIED : 0n);
  }

  /** The active L1 table as it belongs on disk, `size` entries (zero padded). */
  async l1Bytes(size = this.l1.length): Promise<Buffer> {
    const b = Buffer.alloc(size * 8);
    for (let i = 0; i < this.l1.length && i < size; i++) if (this.l1[i]) b.writeBigUInt64BE(await this.l1EntryValue(this.l1[i]), i * 8);
    return b;
  }

  /** The L2 table for a guest cluster, allocating an empty one when missing. */
  private async l2ForWrite(guestCluster: number): Promise<{ table: Buffer; offset: number; index: number }> {
    const l1i = Math.floor(guestCluster / this.l2.entries);
    let off = this.l1[l1i];
    if (!off) {
      off = await this.refcounts.alloc(1);
      await this.cacheL2(off, Buffer.alloc(this.clusterSize));
      this.l2Dirty.set(off, [0, this.clusterSize]);
      await this.writeL1Entry(l1i, off);
    } else if ((await this.refcounts.get(off / this.clusterSize)) !== 1) {
      // Shared with a snapshot: copy the table first (QEMU's l2_allocate), then drop
      // this tree's reference to the old one. Its entries keep their (shared) clusters.
      const old = await this.loadL2(off);
      const fresh = await this.refcounts.alloc(1);
      await this.cacheL2(fresh, Buffer.from(old));
      this.l2Dirty.set(fresh, [0, this.clusterSize]);
      await this.writeL1Entry(l1i, fresh);
      await this.refcounts.decrement(off, 1);
      off = fresh;
    }
    return { table: await this.loadL2(off), offset: off, index: guestCluster % this.l2.entries };
  }

  private async writeL2Entries(l2Offset: number, _table: Buffer, first: number, count: number): Promise<void> {
    const es = this.l2.entrySize;
    const [s, e] = [first * es, (first + count) * es];
    const d = this.l2Dirty.get(l2Offset);
    if (d) { d[0] = Math.min(d[0], s); d[1] = Math.max(d[1], e); } else this.l2Dirty.set(l2Offset, [s, e]);
  }

  /**
   * Map guest clusters [cl, cl+n) (within one L2 table) to new host clusters
   * without writing data: at `host` if given (already counted), else freshly
   * allocated. Used by preallocation.
   */
  async linkClusters(cl: number, n: number, host: number | null, subclustersAllocated: boolean): Promise<{ host: number }> {
    const { table, offset, index } = await this.l2ForWrite(cl);
    const h = host ?? (await this.allocData(cl, n));
    // preallocation=metadata leaves every subcluster unallocated (reads fall through to the backing file)
    const all = { alloc: subclustersAllocated ? 0xffffffff : 0, zero: 0 };
    for (let k = 0; k < n; k++) this.l2.encode(table, index + k, h + k * this.clusterSize, true, false, this.l2.extended ? all : undefined);
    await this.writeL2Entries(offset, table, index, n);
    return { host: h };
  }

  // ---- snapshots: reference counts of a whole tree ----------------------------------

  /**
   * qcow2_update_snapshot_refcount: add `addend` (+1, -1 or 0) to the refcount of
   * every L2 table and cluster the L1 entries reference, and set the COPIED flags
   * of the L2 entries from the new counts. Returns the L1 entries with their new
   * COPIED flags; the caller writes them where they belong.
   */
  async adjustTreeRefcounts(l1: readonly bigint[], addend: number): Promise<{ entries: bigint[]; modified: boolean }> {
    const cs = this.clusterSize;
    const rc = this.refcounts;
    const entries = [...l1];
    let modified = false;
    for (let i = 0; i < entries.length; i++) {
      const l2Off = Number(entries[i] & OFFSET_MASK);
      if (!l2Off) continue;
      if (l2Off % cs) throw new BlockError('corrupt', `L1 entry ${i}: L2 table offset 0x${l2Off.toString(16)} is not cluster aligned`, { offset: l2Off });
      const table = await this.loadL2(l2Off);
      let first = -1;
      let last = -1;
      for (let j = 0; j < this.l2.entries; j++) {
        const e = this.l2.decode(table, j);
        if (e.kind === 'compressed') {
          if (addend) await rc.addRange(e.host, Math.floor((e.host + e.compressedSize - 1) / cs) - Math.floor(e.host / cs) + 1, addend);
          continue;
        }
        let refs = 0;
        if (e.kind === 'normal' || e.kind === 'zero-alloc') {
          if (e.host % cs) throw new BlockError('corrupt', `L2 entry at 0x${(l2Off + j * this.l2.entrySize).toString(16)}: cluster offset 0x${e.host.toString(16)} is not aligned`, { offset: l2Off + j * this.l2.entrySize });
          if (addend) await rc.addRange(e.host, 1, addend);
          refs = await rc.get(e.host / cs);
        }
        const copied = refs === 1;
        if (copied !== e.copied) {
          const p = j * this.l2.entrySize;
          const hi = table.readUInt32BE(p);
          table.writeUInt32BE((copied ? hi | 0x80000000 : hi & 0x7fffffff) >>> 0, p);
          if (first < 0) first = j;
          last = j;
        }
      }
      if (first >= 0) await this.writeL2Entries(l2Off, table, first, last - first + 1);
      if (addend) await rc.addRange(l2Off, 1, addend);
      const refs = await rc.get(l2Off / cs);
      if (refs === 0) {
        // freed: forget it, so that no stale write lands in a cluster handed out again
        this.l2Cache.delete(l2Off);
        this.l2Dirty.delete(l2Off);
      }
      const value = BigInt(l2Off) | (refs === 1 ? OFLAG_COPIED : 0n);
      if (value !== entries[i]) {
        entries[i] = value;
        modified = true;
      }
    }
    return { entries, modified };
  }

  /** The active L1 entries as they stand on disk (with their COPIED flags). */
  async activeL1Entries(): Promise<bigint[]> {
    const raw = await this.file.read(this.header.l1TableOffset, this.l1.length * 8);
    const out: bigint[] = [];
    for (let i = 0; i < this.l1.length; i++) out.push(this.l1[i] ? raw.readBigUInt64BE(i * 8) : 0n);
    return out;
  }

  /** Replace the active L1 table's entries (same size), in memory and on disk. */
  async setActiveL1(entries: readonly bigint[]): Promise<void> {
    const b = Buffer.alloc(this.l1.length * 8);
    for (let i = 0; i < this.l1.length; i++) {
      const v = entries[i] ?? 0n;
      b.writeBigUInt64BE(v, i * 8);
      this.l1[i] = Number(v & OFFSET_MASK);
    }
    await this.file.write(this.header.l1TableOffset, b);
  }

  /** Start of a metadata operation (snapshot create, apply, delete): the same guards as a write. */
  async beginMetadataChange(): Promise<void> {
    await this.beforeWrite();
    if (this.hasDataFile) throw new BlockError('unsupported', 'Operation not supported: internal snapshots need the data in the image file (no data_file)', { option: 'data_file' });
  }

  /**
   * End of one: clusters whose count dropped to zero are zeroed (QEMU discards
   * what snapshot operations free, pass-discard-snapshot), then everything is written back.
   */
  async endMetadataChange(): Promise<void> {
    const cs = this.clusterSize;
    for (const [off, len] of this.refcounts.freed) {
      const n = Math.min(len, this.file.size() - off);
      if (n > 0 && (await this.refcounts.get(off / cs)) === 0) await this.file.write(off, Buffer.alloc(n));
    }
    this.refcounts.freed = [];
    await this.writeBack();
  }

  // ---- reads ----------------------------------------------------------------------

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (this.crypto && (offset % 512 || length % 512)) {
      // encrypted data is whole sectors: read them, hand back the part asked for
      const s = Math.floor(offset / 512) * 512;
      const e = Math.min(this.size(), Math.ceil((offset + length) / 512) * 512);
      const b = await this.read(s, e - s);
      return b.subarray(offset - s, offset - s + length);
    }
    const out = Buffer.allocUnsafe(length);
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const cl = Math.floor(g / this.clusterSize);
      const inCl = g - cl * this.clusterSize;
      const e = await this.entryAt(cl);
      if (e.kind === 'normal' && !this.l2.extended) {
        // Merge runs of host-contiguous clusters into one read.
        let n = Math.min(length - pos, this.clusterSize - inCl);
        let nextHost = e.host + this.clusterSize;
        while (pos + n < length) {
          const e2 = await this.entryAt(cl + Math.ceil(n / this.clusterSize));
          if (e2.kind !== 'normal' || e2.host !== nextHost) break;
          const more = Math.min(length - pos - n, this.clusterSize);
          n += more;
          nextHost += this.clusterSize;
        }
        if (this.data.readInto) await this.data.readInto(out, pos, e.host + inCl, n);
        else (await this.data.read(e.host + inCl, n)).copy(out, pos);
        if (this.crypto) decryptData(this.crypto, out.subarray(pos, pos + n), e.host + inCl, g);
        pos += n;
        continue;
      }
      // Within one (sub)cluster of uniform kind.
      const unit = e.kind === 'compressed' ? this.clusterSize : this.subclusterSize;
      const n = Math.min(length - pos, unit - (g % unit));
      await this.readPiece(e, cl, g, n, out, pos);
      pos += n;
    }
    return out;
  }

  private async readPiece(e: L2Entry, cl: number, g: number, n: number, out: Buffer, pos: number): Promise<void> {
    const inCl = g - cl * this.clusterSize;
    let kind: 'data' | 'zero' | 'backing';
    if (e.kind === 'compressed') {
      const c = await this.decompress(e);
      c.copy(out, pos, inCl, inCl + n);
      return;
    }
    if (this.l2.extended) {
      const sc = Math.floor(inCl / this.subclusterSize);
      if (e.zeroBits & (1 << sc)) kind = 'zero';
      else if (e.allocBits & (1 << sc)) kind = 'data';
      else kind = 'backing';
    } else if (e.kind === 'normal') kind = 'data';
    else if (e.kind === 'unallocated') kind = 'backing';
    else kind = 'zero';
    if (kind === 'data') {
      const d = await this.data.read(e.host + inCl, n);
      if (this.crypto) decryptData(this.crypto, d, e.host + inCl, g);
      d.copy(out, pos);
    }
    else if (kind === 'zero') out.fill(0, pos, pos + n);
    else (await this.readBacking(g, n)).copy(out, pos);
  }

  private async readBacking(g: number, n: number): Promise<Buffer> {
    if (!this.backing) return Buffer.alloc(n);
    const bsize = this.backing.size();
    if (g >= bsize) return Buffer.alloc(n);
    const m = Math.min(n, bsize - g);
    const b = await this.backing.read(g, m);
    return m === n ? b : Buffer.concat([b, Buffer.alloc(n - m)]);
  }

  private async decompress(e: L2Entry): Promise<Buffer> {
    if (this.lastCompressed?.host === e.host) return this.lastCompressed.data;
    if (e.host + e.compressedSize > this.file.size() + 512) {
      throw new BlockError('corrupt', `compressed cluster at 0x${e.host.toString(16)} lies beyond the end of the file`, { offset: e.host });
    }
    const raw = await this.file.read(e.host, e.compressedSize);
    const data = decompressCluster(this.header.compressionType, raw, this.clusterSize, e.host);
    this.lastCompressed = { host: e.host, data };
    return data;
  }

  // ---- writes ---------------------------------------------------------------------

  private async beforeWrite(): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: image opened read-only`);
    if (this.corrupt) throw new BlockError('corrupt', 'qcow2: Image is corrupt; writes are refused');
    if (this.lazyRefcounts && !this.markedDirty) {
      await this.setIncompatBit(INCOMPAT_DIRTY, true);
      this.markedDirty = true;
    }
    this.refcounts.freed = [];
  }

  async setIncompatBit(bit: number, on: boolean): Promise<void> {
    if (this.header.version < 3) return;
    const v = (on ? this.header.incompatibleFeatures | bit : this.header.incompatibleFeatures & ~bit) >>> 0;
    this.header.incompatibleFeatures = v;
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    await this.file.write(76, b); // low word of incompatible_features
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    await this.beforeWrite();
    await this.writeRange(offset, data);
    await this.markBitmaps(offset, data.length);
    await this.afterWrite();
  }

  /**
   * Guest bytes through the L2 tables. An encrypted image takes whole 512-byte sectors
   * (qemu's request_alignment for a crypto block): a partial sector is read (decrypted),
   * merged and written back whole.
   */
  private async writeRange(offset: number, data: Buffer): Promise<void> {
    if (this.crypto && (offset % 512 || data.length % 512)) {
      const s = Math.floor(offset / 512) * 512;
      const e = Math.min(this.size(), Math.ceil((offset + data.length) / 512) * 512);
      const buf = await this.read(s, e - s);
      data.copy(buf, offset - s);
      offset = s;
      data = buf;
    }
    let pos = 0;
    while (pos < data.length) {
      pos += await this.writeWithinL2(offset + pos, data.subarray(pos));
    }
  }

  /** Guest data out to host offset `host` (guest offset `guest`), encrypted when the image is. */
  private async writeData(host: number, guest: number, buf: Buffer): Promise<void> {
    if (!this.crypto) {
      await this.data.write(host, buf);
      return;
    }
    const c = Buffer.from(buf); // never the caller's buffer
    encryptData(this.crypto, c, host, guest);
    await this.data.write(host, c);
  }

  /** Guest data in from host offset `host` (guest offset `guest`), decrypted when the image is. */
  private async readData(host: number, guest: number, len: number): Promise<Buffer> {
    const d = await this.data.read(host, len);
    if (this.crypto) decryptData(this.crypto, d, host, guest);
    return d;
  }

  /** Writes as much of `data` as one L2 table maps; returns the bytes written. */
  private async writeWithinL2(g: number, data: Buffer): Promise<number> {
    const cs = this.clusterSize;
    const cl = Math.floor(g / cs);
    const l2End = (Math.floor(cl / this.l2.entries) + 1) * this.l2.entries * cs;
    const len = Math.min(data.length, l2End - g);
    const { table, offset: l2Off, index } = await this.l2ForWrite(cl);
    const lastCl = Math.floor((g + len - 1) / cs);
    let i = 0;
    const count = lastCl - cl + 1;
    while (i < count) {
      const e = this.l2.decode(table, index + i);
      const inPlace = (e.kind === 'normal' || e.kind === 'zero-alloc') && e.copied;
      // A run of clusters of the same treatment (QEMU's handle_copied / handle_alloc).
      let n = 1;
      if (inPlace) {
        while (i + n < count) {
          const e2 = this.l2.decode(table, index + i + n);
          if (!(e2.kind === 'normal' && e2.copied && e2.host === e.host + n * cs)) break;
          n++;
        }
      } else {
        while (i + n < count) {
          const e2 = this.l2.decode(table, index + i + n);
          if ((e2.kind === 'normal' || e2.kind === 'zero-alloc') && e2.copied) break;
          if (e2.kind === 'compressed') break;
          n++;
        }
      }
      const runStart = Math.max(g, (cl + i) * cs);
      const runEnd = Math.min(g + len, (cl + i + n) * cs);
      const slice = data.subarray(runStart - g, runEnd - g);
      if (inPlace) await this.writeInPlace(table, l2Off, index + i, n, runStart, slice);
      else await this.allocateAndWrite(table, l2Off, index + i, n, runStart, slice);
      i += n;
    }
    return len;
  }

  private async writeInPlace(table: Buffer, l2Off: number, idx: number, n: number, g: number, slice: Buffer): Promise<void> {
    const cs = this.clusterSize;
    const e = this.l2.decode(table, idx);
    const inCl = g % cs;
    if (!this.l2.extended) {
      if (e.kind === 'zero-alloc') {
        // The rest of the cluster must keep reading as zero once the flag goes.
        const buf = Buffer.alloc(cs);
        slice.copy(buf, inCl);
        await this.writeData(e.host, g - inCl, buf.subarray(0, Math.max(inCl + slice.length, cs)));
        this.l2.encode(table, idx, e.host, true, false);
        await this.writeL2Entries(l2Off, table, idx, 1);
        return;
      }
      await this.writeData(e.host + inCl, g, slice);
      return;
    }
    // Extended L2: data goes in place; untouched parts of partly written subclusters are filled first.
    await this.writeSubclusters(table, l2Off, idx, e.host, g, slice);
  }

  private async allocateAndWrite(table: Buffer, l2Off: number, idx: number, n: number, g: number, slice: Buffer): Promise<void> {
    const cs = this.clusterSize;
    const old: L2Entry[] = [];
    for (let k = 0; k < n; k++) old.push(this.l2.decode(table, idx + k));
    const firstCl = Math.floor(g / cs);
    const host = await this.allocData(firstCl, n);
    if (this.l2.extended) {
      for (let k = 0; k < n; k++) {
        const cg = (firstCl + k) * cs;
        const s = Math.max(g, cg);
        const e = Math.min(g + slice.length, cg + cs);
        // Old data of a (compressed or shared) cluster must come along into the new one.
        await this.copyOldSubclusters(old[k], firstCl + k, host + k * cs, s, e);
        await this.writeSubclusters(table, l2Off, idx + k, host + k * cs, s, slice.subarray(s - g, e - g), old[k]);
      }
    } else {
      // Build the whole run: copy-on-write head and tail around the new data.
      const runG = firstCl * cs;
      const head = g - runG;
      const tailStart = head + slice.length;
      if (head === 0 && tailStart === n * cs) {
        // whole clusters: the guest's buffer goes out as it is
        await this.writeData(host, g, slice);
        for (let k = 0; k < n; k++) this.l2.encode(table, idx + k, host + k * cs, true, false);
        await this.writeL2Entries(l2Off, table, idx, n);
        await this.releaseOld(old);
        return;
      }
      const buf = Buffer.alloc(n * cs);
      if (head > 0) (await this.readOld(old[0], firstCl, runG, head)).copy(buf, 0);
      if (tailStart < n * cs) {
        const lastG = runG + tailStart;
        const lastCl = firstCl + n - 1;
        (await this.readOld(old[n - 1], lastCl, lastG, n * cs - tailStart)).copy(buf, tailStart);
      }
      slice.copy(buf, head);
      await this.writeData(host, runG, buf);
      for (let k = 0; k < n; k++) this.l2.encode(table, idx + k, host + k * cs, true, false);
      await this.writeL2Entries(l2Off, table, idx, n);
    }
    await this.releaseOld(old);
  }

  /** Guest bytes [g, g+len) as they read before this write, for copy-on-write. */
  private async readOld(e: L2Entry, cl: number, g: number, len: number): Promise<Buffer> {
    const out = Buffer.alloc(len);
    const inCl = g - cl * this.clusterSize;
    if (e.kind === 'compressed') (await this.decompress(e)).copy(out, 0, inCl, inCl + len);
    else if (e.kind === 'normal') (await this.readData(e.host + inCl, g, len)).copy(out);
    else if (e.kind === 'unallocated') (await this.readBacking(g, len)).copy(out);
    return out;
  }

  /**
   * Host clusters for n guest clusters. An external data file maps the guest
   * disk one to one (QEMU 7.2 does so with or without data_file_raw), and its
   * clusters are not refcounted; otherwise they come from the refcounts.
   */
  private async allocData(firstCl: number, n: number): Promise<number> {
    if (this.hasDataFile) return firstCl * this.clusterSize;
    return this.refcounts.alloc(n);
  }

  private async releaseOld(old: L2Entry[]): Promise<void> {
    if (this.hasDataFile) {
      // No refcounts to drop; a discard is passed down to the data file.
      if (this.zeroFreed) for (const e of old) if (e.host && e.kind !== 'compressed') await this.data.discard(e.host, this.clusterSize);
      return;
    }
    for (const e of old) {
      if (e.kind === 'compressed') await this.releaseCompressed(e);
      else if ((e.kind === 'normal' || e.kind === 'zero-alloc') && e.host) await this.refcounts.decrement(e.host, 1);
    }
  }

  private async releaseCompressed(e: L2Entry): Promise<void> {
    const cs = this.clusterSize;
    const first = Math.floor(e.host / cs);
    const last = Math.floor((e.host + e.compressedSize - 1) / cs);
    for (let c = first; c <= last; c++) await this.refcounts.decrement(c * cs, 1);
  }

  // ---- extended L2 subclusters ------------------------------------------------------

  private async copyOldSubclusters(old: L2Entry, cl: number, newHost: number, s: number, e: number): Promise<void> {
    // Compressed clusters have no subcluster bitmap: the whole cluster moves over.
    if (old.kind !== 'compressed') return;
    const cs = this.clusterSize;
    const data = await this.decompress(old);
    const cg = cl * cs;
    if (s > cg) await this.writeData(newHost, cg, data.subarray(0, s - cg));
    if (e < cg + cs) await this.writeData(newHost + (e - cg), e, data.subarray(e - cg));
  }

  private async writeSubclusters(table: Buffer, l2Off: number, idx: number, host: number, g: number, slice: Buffer, old?: L2Entry): Promise<void> {
    const cs = this.clusterSize;
    const sc = this.subclusterSize;
    const prev = old ?? this.l2.decode(table, idx);
    const cl = Math.floor(g / cs);
    const cg = cl * cs;
    const s = g - cg;
    const e = s + slice.length;
    const firstSc = Math.floor(s / sc);
    const lastSc = Math.floor((e - 1) / sc);
    let alloc = prev.kind === 'compressed' ? 0xffffffff : prev.allocBits;
    let zero = prev.kind === 'compressed' ? 0 : prev.zeroBits;
    const fromCompressed = prev.kind === 'compressed';
    // Fill the untouched parts of the first and last subcluster from their old contents.
    const spanStart = firstSc * sc;
    const spanEnd = (lastSc + 1) * sc;
    const buf = Buffer.alloc(spanEnd - spanStart);
    for (const scIdx of new Set([firstSc, lastSc])) {
      const bit = 1 << scIdx;
      const scStart = scIdx * sc;
      if (fromCompressed || (alloc & bit && !(zero & bit) && host === prev.host && prev.host)) {
        (await this.readData(host + scStart, cg + scStart, sc)).copy(buf, scStart - spanStart);
      } else if (!(zero & bit) && !(alloc & bit)) {
        (await this.readBacking(cg + scStart, sc)).copy(buf, scStart - spanStart);
      } else if (alloc & bit && prev.host && host !== prev.host) {
        (await this.readData(prev.host + scStart, cg + scStart, sc)).copy(buf, scStart - spanStart);
      }
    }
    slice.copy(buf, s - spanStart);
    await this.writeData(host + spanStart, cg + spanStart, buf);
    for (let k = firstSc; k <= lastSc; k++) {
      alloc = (alloc | (1 << k)) >>> 0;
      zero = (zero & ~(1 << k)) >>> 0;
    }
    this.l2.encode(table, idx, host, true, false, { alloc, zero });
    await this.writeL2Entries(l2Off, table, idx, 1);
  }

  // ---- zeroes and discard ---------------------------------------------------------

  async writeZeroes(offset: number, length: number, opts: { unmap?: boolean } = {}): Promise<void> {
    checkRange(this, offset, length);
    await this.beforeWrite();
    const cs = this.clusterSize;
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const cl = Math.floor(pos / cs);
      const cEnd = Math.min(end, (cl + 1) * cs);
      const whole = pos === cl * cs && (cEnd === (cl + 1) * cs || cEnd === this.size());
      // v2 has no zero flag: without a backing file an unallocated cluster reads
      // as zeroes, so QEMU discards; with one it must write real zeroes.
      const zeroFlagUsable = this.header.version >= 3 || !this.backing;
      if (zeroFlagUsable && whole) await this.zeroCluster(cl, !!opts.unmap);
      else if (this.l2.extended) await this.zeroWithinCluster(cl, pos, cEnd);
      else if (zeroFlagUsable && (await this.readsAsZero(cl))) await this.zeroCluster(cl, !!opts.unmap);
      else await this.writeRange(pos, Buffer.alloc(cEnd - pos));
      pos = cEnd;
    }
    await this.markBitmaps(offset, length);
    await this.afterWrite();
  }

  /**
   * Extended L2: whole subclusters become zero subclusters; a partly covered
   * subcluster too if it already reads as zero, else it gets real zeroes.
   */
  private async zeroWithinCluster(cl: number, from: number, to: number): Promise<void> {
    const sc = this.subclusterSize;
    const base = cl * this.clusterSize;
    let pos = from;
    while (pos < to) {
      const scIdx = Math.floor((pos - base) / sc);
      const scStart = base + scIdx * sc;
      const scEnd = Math.min(scStart + sc, this.size());
      if (pos === scStart && (to >= scEnd)) {
        // a run of whole subclusters
        let n = 1;
        while (scStart + (n + 1) * sc <= to) n++;
        if (!(await this.markSubclustersZero(cl, scIdx, n))) await this.writeRange(pos, Buffer.alloc(n * sc));
        pos = scStart + n * sc;
        continue;
      }
      const partEnd = Math.min(to, scEnd);
      const e = await this.entryAt(cl);
      const bit = 1 << scIdx;
      const readsZero = e.kind !== 'compressed' && ((e.zeroBits & bit) !== 0 || (!(e.allocBits & bit) && !this.backing));
      if (!(readsZero && (await this.markSubclustersZero(cl, scIdx, 1)))) await this.writeRange(pos, Buffer.alloc(partEnd - pos));
      pos = partEnd;
    }
  }

  /** Set the zero bits of n subclusters (clearing their allocation bits); false for compressed clusters. */
  private async markSubclustersZero(cl: number, first: number, n: number): Promise<boolean> {
    const { table, offset: l2Off, index } = await this.l2ForWrite(cl);
    const e = this.l2.decode(table, index);
    if (e.kind === 'compressed') return false;
    const mask = (n >= 32 ? 0xffffffff : ((1 << n) - 1) << first) >>> 0;
    const zero = (e.zeroBits | mask) >>> 0;
    const alloc = (e.allocBits & ~mask) >>> 0;
    if (zero === e.zeroBits && alloc === e.allocBits) return true;
    this.l2.encode(table, index, e.host, e.host ? e.copied : false, false, { alloc, zero });
    await this.writeL2Entries(l2Off, table, index, 1);
    return true;
  }

  /** Whether a whole guest cluster reads as zeroes without looking at data. */
  private async readsAsZero(cl: number): Promise<boolean> {
    const e = await this.entryAt(cl);
    if (this.l2.extended) return false;
    if (e.kind === 'zero-plain' || e.kind === 'zero-alloc') return true;
    if (e.kind !== 'unallocated') return false;
    if (!this.backing) return true;
    const g = cl * this.clusterSize;
    const n = Math.min(this.clusterSize, this.size() - g);
    if (g >= this.backing.size()) return true;
    const b = await this.readBacking(g, n);
    return b.every((x) => x === 0);
  }

  private async zeroCluster(cl: number, unmap: boolean): Promise<void> {
    const { table, offset: l2Off, index } = await this.l2ForWrite(cl);
    const e = this.l2.decode(table, index);
    const release = e.kind === 'compressed' || (unmap && (e.kind === 'normal' || e.kind === 'zero-alloc'));
    // Without unmap the entry keeps its cluster (and COPIED flag) and gains the zero flag.
    const keepHost = release ? 0 : e.host;
    const keepCopied = !release && e.copied;
    if (this.l2.extended) {
      if (!release && e.zeroBits === 0xffffffff && e.allocBits === 0) return;
      this.l2.encode(table, index, keepHost, keepCopied, false, { alloc: 0, zero: 0xffffffff });
    } else if (this.header.version < 3) {
      if (e.kind === 'unallocated') return;
      this.l2.encode(table, index, 0, false, false);
      await this.writeL2Entries(l2Off, table, index, 1);
      this.zeroFreed = true;
      await this.releaseOld([e]);
      return;
    } else {
      if (!release && (e.kind === 'zero-plain' || e.kind === 'zero-alloc')) return;
      this.l2.encode(table, index, keepHost, keepCopied, true);
    }
    await this.writeL2Entries(l2Off, table, index, 1);
    if (release) {
      this.zeroFreed = true;
      await this.releaseOld([e]);
    }
  }

  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    await this.beforeWrite();
    const cs = this.clusterSize;
    // Only whole clusters are discarded (and a final partial cluster at the disk's end).
    const first = Math.ceil(offset / cs);
    const endCl = offset + length === this.size() ? Math.ceil((offset + length) / cs) : Math.floor((offset + length) / cs);
    for (let cl = first; cl < endCl; cl++) {
      const { table } = await this.lookup(cl);
      if (!table) {
        if (!this.backing) continue;
      }
      const e = await this.entryAt(cl);
      const allocated = e.kind === 'normal' || e.kind === 'zero-alloc' || e.kind === 'compressed';
      if (!this.backing && !allocated) continue;
      const w = await this.l2ForWrite(cl);
      if (this.l2.extended) this.l2.encode(w.table, w.index, 0, false, false, { alloc: 0, zero: 0xffffffff });
      else if (this.header.version >= 3) this.l2.encode(w.table, w.index, 0, false, true);
      else this.l2.encode(w.table, w.index, 0, false, false);
      await this.writeL2Entries(w.offset, w.table, w.index, 1);
      this.zeroFreed = true;
      await this.releaseOld([e]);
    }
    await this.markBitmaps(offset, length);
    await this.afterWrite();
  }

  /** Enabled bitmaps record every guest write, zeroing and discard (as QEMU's bdrv_set_dirty does). */
  private async markBitmaps(offset: number, length: number): Promise<void> {
    const list = trackingBitmaps(this.bitmaps);
    if (!list.length) return;
    const w = { file: this.file, clusterSize: this.clusterSize, allocCluster: () => this.refcounts.alloc(1) };
    for (const b of list) await markDirty(w, b, offset, length);
  }

  private async afterWrite(): Promise<void> {
    if (this.zeroFreed) {
      // QEMU passes guest discards down (a hole punch): freed clusters read as zero.
      for (const [off, len] of this.refcounts.freed) {
        if (off + len <= this.file.size()) await this.file.write(off, Buffer.alloc(len));
      }
      this.zeroFreed = false;
    }
    this.refcounts.freed = [];
    if (this.writethrough) {
      for (const off of [...this.l2Dirty.keys()]) await this.writeBackL2(off);
      if (!this.lazyRefcounts) await this.refcounts.flush();
    }
  }

  // ---- resize ------------------------------------------------------------------------

  /**
   * qemu-img resize. Growing allocates a larger L1 table when the disk needs
   * more entries (exactly as many, as QEMU's truncate does) and frees the old
   * one; shrinking drops every cluster past the new end, frees L2 tables no
   * longer reachable and trims the file after the last cluster still used.
   */
  async resize(newSize: number, opts: { shrink?: boolean; preallocation?: 'off' | 'metadata' | 'falloc' | 'full' } = {}): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: image opened read-only`);
    if (newSize % 512 !== 0) throw new BlockError('invalid-size', `size: ${newSize} is not a multiple of 512`, { option: 'size' });
    const old = this.size();
    const cs = this.clusterSize;
    const perL1 = this.l2.entries * cs;
    if (newSize < old) {
      if (!opts.shrink) throw new BlockError('invalid-size', 'Use the --shrink option to perform a shrink operation.', { option: 'shrink' });
      await this.beforeWrite();
      // Clusters past the end are discarded for good (QEMU punches them: they read as zero if reused).
      this.zeroFreed = true;
      const firstGone = Math.ceil(newSize / cs);
      for (let cl = firstGone; cl < Math.ceil(old / cs); cl++) {
        const { table, index } = await this.lookup(cl);
        if (!table) continue;
        const e = this.l2.decode(table, index);
        if (e.kind === 'unallocated') continue;
        const w = await this.l2ForWrite(cl);
        this.l2.encode(w.table, w.index, 0, false, false, this.l2.extended ? { alloc: 0, zero: 0 } : undefined);
        await this.writeL2Entries(w.offset, w.table, w.index, 1);
        await this.releaseOld([e]);
      }
      const keepL1 = Math.ceil(newSize / perL1);
      for (let i = keepL1; i < this.l1.length; i++) {
        const l2 = this.l1[i];
        if (!l2) continue;
        await this.writeBack();
        this.l2Cache.delete(l2);
        this.l2Dirty.delete(l2);
        await this.writeL1Entry(i, 0);
        await this.refcounts.decrement(l2, 1);
      }
      await this.setSize(newSize);
      await this.afterWrite();
      await this.writeBack();
      // Trim the file after the last cluster still counted.
      let last = Math.ceil(this.file.size() / cs) - 1;
      while (last >= 0 && (await this.refcounts.get(last)) === 0) last--;
      const file = this.file as BlockNode & { truncate?: (n: number) => Promise<void> };
      if (file.truncate && (last + 1) * cs < this.file.size()) await file.truncate((last + 1) * cs);
      return;
    }
    if (newSize === old) return;
    await this.beforeWrite();
    await this.growL1(Math.ceil(newSize / perL1));
    await this.setSize(newSize);
    const prealloc = opts.preallocation ?? 'off';
    if (prealloc !== 'off') {
      // Map every new cluster; falloc/full also reserve (full: write) the data.
      let cl = Math.ceil(old / cs);
      const endCl = Math.ceil(newSize / cs);
      while (cl < endCl) {
        const n = Math.min(endCl - cl, this.l2.entries - (cl % this.l2.entries));
        const { host } = await this.linkClusters(cl, n, null, prealloc !== 'metadata');
        if (prealloc === 'full') await this.data.write(host, Buffer.alloc(n * cs));
        else if (host + n * cs > this.data.size()) {
          const f = this.data as BlockNode & { truncate?: (n: number, p?: 'off' | 'falloc' | 'full') => Promise<void> };
          await f.truncate?.(host + n * cs, prealloc === 'falloc' ? 'falloc' : 'off');
        }
        cl += n;
      }
    }
    await this.afterWrite();
    await this.writeBack();
  }

  /** qcow2_grow_l1_table with exact size: a new table of `needL1` entries, the old one freed. */
  async growL1(needL1: number): Promise<void> {
    if (needL1 <= this.l1.length) return;
    const cs = this.clusterSize;
    const bytes = needL1 * 8;
    const offset = await this.refcounts.alloc(Math.ceil(bytes / cs));
    await this.file.write(offset, await this.l1Bytes(needL1));
    const oldOffset = this.header.l1TableOffset;
    const oldClusters = Math.ceil((this.l1.length * 8) / cs);
    const h = Buffer.alloc(12);
    h.writeUInt32BE(needL1, 0);
    h.writeBigUInt64BE(BigInt(offset), 4);
    await this.file.write(36, h);
    this.header.l1Size = needL1;
    this.header.l1TableOffset = offset;
    this.l1 = [...this.l1, ...new Array(needL1 - this.l1.length).fill(0)];
    if (oldClusters) await this.refcounts.decrement(oldOffset, oldClusters);
  }

  private async setSize(size: number): Promise<void> {
    this.header.size = size;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(size));
    await this.file.write(24, b);
  }

  // ---- backing file and emptying (rebase, commit) -------------------------------------

  /**
   * Point the header at another backing file (or none), rewriting the first
   * cluster as QEMU's qcow2_update_header lays it out; other extensions stay.
   */
  async changeBackingFile(name: string | undefined, format: string | undefined): Promise<void> {
    this.backingFile = name || undefined;
    this.backingFormat = name ? format : undefined;
    await this.rewriteHeader();
  }

  /** Write the whole first cluster from the in-memory header, as qcow2_update_header does. */
  async rewriteHeader(): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: image opened read-only`);
    const cs = this.clusterSize;
    const regenerated = new Set([EXT_BACKING_FORMAT, EXT_DATA_FILE, EXT_FEATURE_TABLE, EXT_CRYPTO_HEADER]);
    const extra = this.extensions.filter((e) => !regenerated.has(e.type));
    // qcow2_update_header's order: backing format, data file, crypto header, feature table, the rest
    const crypto = this.extensions.find((e) => e.type === EXT_CRYPTO_HEADER)?.data;
    const { tail, backingFileOffset, backingFileSize } = buildHeaderTail({
      version: this.header.version, clusterSize: cs, headerLength: this.header.headerLength,
      backingFile: this.backingFile, backingFormat: this.backingFile ? this.backingFormat : undefined, dataFile: this.dataFileName, crypto, extra,
    });
    this.header.backingFileOffset = backingFileOffset;
    this.header.backingFileSize = backingFileSize;
    const cluster0 = Buffer.alloc(cs);
    serializeHeader(this.header, cluster0);
    tail.copy(cluster0, this.header.headerLength);
    await this.file.write(0, cluster0);
    this.extensions = parseExtensions(cluster0, this.header.headerLength, backingFileOffset || cs);
  }

  /**
   * qemu-img amend -o compat=: 0.10 -> 1.1 rewrites the header as version 3;
   * 1.1 -> 0.10 first turns zero clusters into what version 2 can say
   * (unallocated without a backing file, else real zeroes) and refuses
   * what version 2 cannot hold at all.
   */
  async setVersion(version: 2 | 3): Promise<void> {
    const h = this.header;
    if (version === h.version) return;
    if (version === 3) {
      Object.assign(h, { version: 3, headerLength: V3_HEADER_LENGTH, incompatibleFeatures: 0, compatibleFeatures: 0, autoclearFeatures: 0, refcountOrder: 4, compressionType: 0 });
      await this.rewriteHeader();
      return;
    }
    const refuse = (what: string, option: string) => {
      throw new BlockError('option-conflict', `compat=0.10: cannot downgrade an image that uses ${what}`, { option });
    };
    if (h.refcountOrder !== 4) refuse(`refcount_bits=${2 ** h.refcountOrder} (version 2 has 16-bit refcounts only)`, 'refcount_bits');
    if (this.l2.extended) refuse('extended L2 entries', 'extended_l2');
    if (h.compressionType !== 0) refuse('zstd compression', 'compression_type');
    if (this.hasDataFile) refuse('an external data file', 'data_file');
    await this.expandZeroClusters();
    await this.writeBack();
    Object.assign(h, { version: 2, headerLength: V2_HEADER_LENGTH, incompatibleFeatures: 0, compatibleFeatures: 0, autoclearFeatures: 0, compressionType: 0 });
    this.markedDirty = false;
    await this.rewriteHeader();
  }

  private async expandZeroClusters(): Promise<void> {
    const cs = this.clusterSize;
    for (let cl = 0; cl < Math.ceil(this.size() / cs); cl++) {
      const { table, index } = await this.lookup(cl);
      if (!table) continue;
      const e = this.l2.decode(table, index);
      if (e.kind === 'zero-alloc') {
        await this.data.write(e.host, Buffer.alloc(cs));
        this.l2.encode(table, index, e.host, e.copied, false);
        await this.writeL2Entries(this.l1[Math.floor(cl / this.l2.entries)], table, index, 1);
      } else if (e.kind === 'zero-plain') {
        this.l2.encode(table, index, 0, false, false);
        await this.writeL2Entries(this.l1[Math.floor(cl / this.l2.entries)], table, index, 1);
        // With a backing file, "unallocated" would show the backing data: write real zeroes.
        if (this.backing) await this.writeWithinL2(cl * cs, Buffer.alloc(Math.min(cs, this.size() - cl * cs)));
      }
    }
    await this.afterWrite();
  }

  /** amend -o lazy_refcounts=on|off (version 3 only). */
  async setLazyRefcounts(on: boolean): Promise<void> {
    if (on === this.lazyRefcounts) return;
    await this.writeBack();
    if (this.dirty) await this.setIncompatBit(INCOMPAT_DIRTY, false);
    this.markedDirty = false;
    this.header.compatibleFeatures = on ? this.header.compatibleFeatures | COMPAT_LAZY_REFCOUNTS : this.header.compatibleFeatures & ~COMPAT_LAZY_REFCOUNTS;
    await this.rewriteHeader();
  }

  /**
   * amend -o refcount_bits=: a new refcount table and blocks of the new width,
   * placed at the end of the file and counting every cluster as before (and
   * themselves); the old structures are then free space.
   */
  async setRefcountOrder(order: number): Promise<void> {
    if (order === this.header.refcountOrder) return;
    await this.writeBack();
    const cs = this.clusterSize;
    const fileClusters = Math.ceil(this.file.size() / cs);
    const counts: number[] = [];
    for (let i = 0; i < fileClusters; i++) counts.push(await this.refcounts.get(i));
    const maxNew = order === 6 ? Number.MAX_SAFE_INTEGER : 2 ** (2 ** order) - 1;
    const over = counts.findIndex((c) => c > maxNew);
    if (over >= 0) throw new BlockError('invalid-option', `refcount_bits=${2 ** order}: cluster ${over} has refcount ${counts[over]}, beyond what ${2 ** order} bits hold`, { option: 'refcount_bits' });
    // the old table and blocks are no longer counted
    for (let i = 0; i < Math.ceil((this.refcounts.table.length * 8) / cs); i++) counts[this.refcounts.tableOffset / cs + i] = 0;
    for (const b of this.refcounts.table) if (b) counts[b / cs] = 0;
    const meta = refcountMetadata(fileClusters, cs, order, false);
    const start = fileClusters;
    const blocksAt = start;
    const tableAt = start + meta.blocks;
    const fresh = new Refcounts(this.file, { clusterBits: this.clusterBits, refcountOrder: order }, tableAt * cs, new Array((meta.table * cs) / 8).fill(0));
    for (let b = 0; b < meta.blocks; b++) {
      fresh.table[b] = (blocksAt + b) * cs;
      await this.file.write((blocksAt + b) * cs, Buffer.alloc(cs));
    }
    for (let i = 0; i < meta.blocks + meta.table; i++) counts[start + i] = 1;
    for (let i = 0; i < counts.length; i++) if (counts[i]) await fresh.increment(i * cs, 1).then(async () => { for (let k = 1; k < counts[i]; k++) await fresh.increment(i * cs, 1); });
    await fresh.flush();
    const raw = Buffer.alloc(meta.table * cs);
    fresh.table.forEach((v, i) => raw.writeBigUInt64BE(BigInt(v), i * 8));
    await this.file.write(tableAt * cs, raw);
    this.header.refcountOrder = order;
    this.header.refcountTableOffset = tableAt * cs;
    this.header.refcountTableClusters = meta.table;
    fresh.onTableMoved = this.refcounts.onTableMoved;
    this.refcounts = fresh;
    await this.rewriteHeader();
  }

  /** qcow2_make_empty: every cluster unallocated again (after a commit), so reads fall through to the backing file. */
  async makeEmpty(): Promise<void> {
    await this.beforeWrite();
    this.zeroFreed = true;
    const cs = this.clusterSize;
    for (let cl = 0; cl < Math.ceil(this.size() / cs); cl++) {
      const { table, index } = await this.lookup(cl);
      if (!table) continue;
      const e = this.l2.decode(table, index);
      if (e.kind === 'unallocated' && !e.allocBits && !e.zeroBits) continue;
      const w = await this.l2ForWrite(cl);
      this.l2.encode(w.table, w.index, 0, false, false, this.l2.extended ? { alloc: 0, zero: 0 } : undefined);
      await this.writeL2Entries(w.offset, w.table, w.index, 1);
      await this.releaseOld([e]);
    }
    await this.afterWrite();
  }

  // ---- compressed writes ----------------------------------------------------------

  /** Next byte QEMU's qcow2_alloc_bytes would hand out, for packing compressed clusters. */
  private freeByteOffset = 0;

  /** Store one whole guest cluster compressed (convert -c); falls back to plain if it does not shrink. */
  async writeCompressed(offset: number, data: Buffer): Promise<void> {
    const cs = this.clusterSize;
    if (offset % cs !== 0 || (data.length !== cs && offset + data.length !== this.size())) {
      throw new BlockError('invalid-option', 'compressed writes must cover exactly one cluster');
    }
    await this.beforeWrite();
    if (this.hasDataFile) {
      throw new BlockError('unsupported', 'qcow2: compression is not possible with an external data file', { option: 'data_file' });
    }
    if (this.crypto) {
      // qemu-img convert's words; compressed clusters would hold the guest data unencrypted
      throw new BlockError('unsupported', 'Compression and encryption not supported at the same time', { option: 'compress' });
    }
    const full = data.length === cs ? data : Buffer.concat([data, Buffer.alloc(cs - data.length)]);
    const z = await compressCluster(this.header.compressionType, full);
    if (!z) {
      await this.write(offset, data);
      return;
    }
    const cl = offset / cs;
    const { table, offset: l2Off, index } = await this.l2ForWrite(cl);
    const old = this.l2.decode(table, index);
    const host = await this.allocBytes(z.length);
    await this.data.write(host, z);
    this.l2.encodeCompressed(table, index, host, z.length);
    await this.writeL2Entries(l2Off, table, index, 1);
    await this.releaseOld([old]);
    await this.markBitmaps(offset, data.length);
    await this.afterWrite();
  }

  /** qcow2_alloc_bytes: byte-granular allocation that keeps packing into the current cluster. */
  private async allocBytes(size: number): Promise<number> {
    const cs = this.clusterSize;
    let off = this.freeByteOffset;
    if (off && (await this.refcounts.get(Math.floor(off / cs))) === this.refcounts.maxRefcount) off = 0;
    let freeInCluster = cs - (off % cs);
    for (;;) {
      if (!off || freeInCluster < size) {
        const newCluster = await this.refcounts.allocNoref(1);
        if (!off || Math.ceil(off / cs) * cs !== newCluster) {
          off = newCluster;
          freeInCluster = cs;
        } else {
          freeInCluster += cs;
        }
      }
      if (await this.refcounts.tryIncrementBytes(off, size)) break;
      off = 0; // QEMU starts over with a fresh cluster after -EAGAIN
    }
    this.freeByteOffset = (off + size) % cs === 0 ? 0 : off + size;
    return off;
  }

  // ---- status ---------------------------------------------------------------------

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const end = Math.min(this.size(), offset + length);
    const first = await this.statusOne(offset);
    let pos = Math.min(end, first.offset + first.length);
    while (pos < end) {
      const next = await this.statusOne(pos);
      const contiguousHost = first.hostOffset === undefined ? next.hostOffset === undefined : next.hostOffset === first.hostOffset + (pos - offset);
      if (next.data !== first.data || next.zero !== first.zero || next.present !== first.present || next.depth !== first.depth || !!next.compressed !== !!first.compressed || !contiguousHost) break;
      pos = Math.min(end, next.offset + next.length);
    }
    const st = { ...first, offset, length: pos - offset };
    // an encrypted image's host offsets are not reported (qemu sets no OFFSET_VALID with crypto);
    // runs are still cut where the host offsets jump, which keeps convert's reads host-contiguous
    if (this.crypto) delete st.hostOffset;
    return st;
  }

  /** Status of the (sub)cluster holding `g`, from `g` to its end. */
  private async statusOne(g: number): Promise<BlockStatus> {
    const cs = this.clusterSize;
    const cl = Math.floor(g / cs);
    const e = await this.entryAt(cl);
    const unit = e.kind === 'compressed' || !this.l2.extended ? cs : this.subclusterSize;
    const unitEnd = Math.min(this.size(), (Math.floor(g / unit) + 1) * unit);
    const length = unitEnd - g;
    const inCl = g - cl * cs;
    let kind: 'data' | 'zero' | 'unallocated' | 'compressed';
    if (e.kind === 'compressed') kind = 'compressed';
    else if (this.l2.extended) {
      const bit = 1 << Math.floor(inCl / this.subclusterSize);
      kind = e.zeroBits & bit ? 'zero' : e.allocBits & bit ? 'data' : 'unallocated';
    } else kind = e.kind === 'normal' ? 'data' : e.kind === 'unallocated' ? 'unallocated' : 'zero';
    if (kind === 'data') {
      const host = e.host + inCl;
      if (this.metadataPreallocated) {
        // Recurse into the file, as QEMU does for preallocated images.
        const fileEnd = this.data.size();
        if (host >= fileEnd) return { offset: g, length, data: true, zero: true, present: true, depth: 0, hostOffset: host };
        const f = await this.data.blockStatus(host, Math.min(length, fileEnd - host));
        return { offset: g, length: Math.min(length, f.length), data: true, zero: f.zero, present: true, depth: 0, hostOffset: host };
      }
      return { offset: g, length, data: true, zero: false, present: true, depth: 0, hostOffset: host };
    }
    if (kind === 'compressed') return { offset: g, length, data: true, zero: false, present: true, depth: 0, compressed: true };
    if (kind === 'zero') {
      // A zero cluster that keeps its host cluster still has an offset to show.
      const hostOffset = e.host ? e.host + inCl : undefined;
      return { offset: g, length, data: false, zero: true, present: true, depth: 0, hostOffset };
    }
    if (this.backing && g < this.backing.size()) {
      const b = await this.backing.blockStatus(g, Math.min(length, this.backing.size() - g));
      return { ...b, offset: g, length: b.length, depth: b.depth + 1 };
    }
    // No backing layer reaches this far: it reads as zero from this layer. An
    // unallocated subcluster of an allocated cluster still shows its host offset.
    const hostOffset = this.l2.extended && e.host ? e.host + inCl : undefined;
    return { offset: g, length, data: false, zero: true, present: false, depth: 0, hostOffset };
  }

  /** A crashed writer: the file is released with whatever reached it, the dirty bit stays. */
  async abandon(): Promise<void> {
    await this.backing?.close();
    if (this.data !== this.file) await this.data.close();
    await this.file.close();
  }

  async flush(): Promise<void> {
    await this.writeBack();
    await this.file.flush();
  }

  async close(): Promise<void> {
    if (!this.readOnly) await this.writeBack();
    if (!this.readOnly && this.markedDirty) await this.setIncompatBit(INCOMPAT_DIRTY, false);
    await this.backing?.close();
    if (this.data !== this.file) await this.data.close();
    await this.file.close();
  }

}

async function detectMetadataPreallocation(img: Qcow2Image): Promise<boolean> {
  const file = img.file as BlockNode & { allocatedSize?: () => Promise<number> };
  if (!file.allocatedSize) return false;
  const realClusters = Math.floor((await file.allocatedSize()) / img.clusterSize);
  const threshold = Math.max(Math.floor((realClusters * 10) / 9), realClusters + 2);
  const end = Math.ceil(file.size() / img.clusterSize);
  let count = 0;
  for (let i = 0; i < end && count < threshold; i++) if ((await img.refcounts.get(i)) !== 0) count++;
  return count >= threshold;
}

function checkTable(field: string, offset: number, bytes: number, cs: number, fileSize: number, at: number): void {
  if (offset % cs !== 0) throw malformed(field, `0x${offset.toString(16)} is not aligned to the cluster size ${cs}`, at);
  if (offset < cs && bytes > 0) throw malformed(field, `0x${offset.toString(16)} overlaps the image header`, at);
  if (offset + bytes > fileSize) {
    throw malformed(field, `table of ${bytes} bytes at 0x${offset.toString(16)} extends beyond the end of the file (${fileSize} bytes)`, at);
  }
}
