/**
 * A hosted sparse extent: the "KDMV" header (VMDK4, little endian), or the
 * older "COWD" one (VMFSSPARSE), a grain directory (GD) of grain table (GT)
 * sector numbers, grain tables of grain sector numbers, and the grains.
 *
 * KDMV header, after the 4-byte magic (offsets from the start of the file):
 *
 *   0x04 version u32          1; 2 with zeroed grains; 3 stream-optimized
 *   0x08 flags u32            bit 0 newline test, 1 redundant GD, 2 zeroed-grain GTEs,
 *                             16 compressed grains, 17 markers
 *   0x0c capacity u64         sectors      0x14 granularity u64  sectors per grain
 *   0x1c descriptor offset u64, 0x24 descriptor size u64 (sectors)
 *   0x2c numGTEsPerGT u32     0x30 rgd offset u64   0x38 gd offset u64 (sectors;
 *                             all ones: the GD is found through the footer)
 *   0x40 grain offset u64     0x48 filler, 0x49 "\n \r\n" check bytes
 *   0x4d compress algorithm u16 (1 deflate)
 *
 * A GT entry of 0 is an unallocated grain, 1 (with the zeroed-grain flag) a
 * grain that reads as zeroes. A compressed grain starts with a marker
 * {lba u64, size u32} and its zlib stream. QEMU keeps two GDs (the redundant
 * one at rgd offset, each followed by its own GTs) and updates both.
 *
 * Bounds the reference adds for hostile images: the GD must lie inside the
 * file (so it is never bigger than the file), a GT must lie inside the file
 * when it is used, at most GT_CACHE tables are held at once.
 */
import * as zlib from 'node:zlib';
import { BlockError, malformed } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';

export const SECTOR = 512;
export const KDMV = 0x4b444d56; // "KDMV" read big endian
export const COWD = 0x434f5744; // "COWD"
export const FLAG_NL_DETECT = 1 << 0;
export const FLAG_RGD = 1 << 1;
export const FLAG_ZERO_GRAIN = 1 << 2;
export const FLAG_COMPRESS = 1 << 16;
export const FLAG_MARKER = 1 << 17;
export const GD_AT_END = 0xffffffffffffffffn;
const GTE_ZEROED = 1;
const MARKER_FOOTER = 3;
const MARKER_EOS = 0;
/** QEMU's limits: a grain of more than 1 GiB is "unrealistic", a GD of more than 32 Mi entries too big. */
const MAX_GRAIN_SECTORS = 0x200000;
const MAX_GD_ENTRIES = 32 * 1024 * 1024;
const MAX_EXTENT_SECTORS = 2 ** 32;
const GT_CACHE = 64;

/** Header field offsets (from the start of the file), for crafted images and masks. */
export const HEADER = {
  magic: 0x00, version: 0x04, flags: 0x08, capacity: 0x0c, granularity: 0x14, descOffset: 0x1c, descSize: 0x24,
  numGtesPerGt: 0x2c, rgdOffset: 0x30, gdOffset: 0x38, grainOffset: 0x40, filler: 0x48, checkBytes: 0x49, compressAlgorithm: 0x4d,
} as const;

export interface SparseHeader {
  version: number;
  flags: number;
  capacity: number;
  granularity: number;
  descOffset: number;
  descSize: number;
  numGtesPerGt: number;
  rgdOffset: number;
  gdOffset: bigint;
  grainOffset: number;
  compressAlgorithm: number;
}

function u64(b: Buffer, at: number, field: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(field, `${field} ${v} is beyond any file`);
  return Number(v);
}

export function parseKdmv(b: Buffer): SparseHeader {
  const gdOffset = b.readBigUInt64LE(HEADER.gdOffset);
  return {
    version: b.readUInt32LE(HEADER.version),
    flags: b.readUInt32LE(HEADER.flags),
    capacity: u64(b, HEADER.capacity, 'capacity'),
    granularity: u64(b, HEADER.granularity, 'granularity'),
    descOffset: u64(b, HEADER.descOffset, 'descriptor_offset'),
    descSize: u64(b, HEADER.descSize, 'descriptor_size'),
    numGtesPerGt: b.readUInt32LE(HEADER.numGtesPerGt),
    rgdOffset: u64(b, HEADER.rgdOffset, 'rgd_offset'),
    gdOffset,
    grainOffset: u64(b, HEADER.grainOffset, 'grain_offset'),
    compressAlgorithm: b.readUInt16LE(HEADER.compressAlgorithm),
  };
}

export type GrainState = { kind: 'unallocated' } | { kind: 'zero' } | { kind: 'data'; sector: number } | { kind: 'no-table' };

export class SparseExtent {
  readonly compressed: boolean;
  readonly hasMarker: boolean;
  readonly zeroGrain: boolean;
  readonly grainBytes: number;
  /** guest sectors this extent holds */
  readonly sectors: number;
  private nextSector: number;
  private readonly gtCache = new Map<number, Uint32Array>();
  private lastGrain: { sector: number; data: Buffer } | null = null;
  /** a compressed grain was written in this open (the file end is aligned at close) */
  wroteCompressed = false;

  private constructor(
    readonly file: ProtocolNode,
    readonly version: number,
    flags: number,
    compressAlgorithm: number,
    sectors: number,
    readonly grainSectors: number,
    readonly gtes: number,
    private readonly gd: Uint32Array,
    private readonly gdOffset: number,
    private readonly rgd: Uint32Array | null,
    private readonly rgdOffset: number,
  ) {
    this.sectors = sectors;
    this.compressed = compressAlgorithm === 1;
    this.hasMarker = (flags & FLAG_MARKER) !== 0;
    this.zeroGrain = (flags & FLAG_ZERO_GRAIN) !== 0;
    this.grainBytes = grainSectors * SECTOR;
    // New grains go after everything in the file, on a grain boundary (QEMU's next_cluster_sector).
    this.nextSector = Math.ceil(Math.ceil(file.size() / SECTOR) / grainSectors) * grainSectors;
  }

  /** A KDMV extent whose header (`head`, the first 512 bytes) is already read. */
  static async openKdmv(file: ProtocolNode, head: Buffer, readOnly: boolean): Promise<SparseExtent> {
    let h = parseKdmv(head);
    const fileSize = file.size();
    if (h.gdOffset === GD_AT_END) {
      // Stream-optimized images written in one pass: the footer (a marker, a header copy, the end-of-stream marker) has the GD offset.
      if (fileSize < 1536 + SECTOR) throw malformed('footer', `Invalid footer: the file (${fileSize} bytes) is too small to hold one`);
      const f = await file.read(Math.floor(fileSize / SECTOR) * SECTOR - 1536, 1536);
      if (f.readUInt32BE(512) !== KDMV || f.readUInt32LE(8) !== 0 || f.readUInt32LE(12) !== MARKER_FOOTER ||
        f.readBigUInt64LE(1024) !== 0n || f.readUInt32LE(1032) !== 0 || f.readUInt32LE(1036) !== MARKER_EOS) {
        throw malformed('footer', 'Invalid footer (the grain directory is at the end, but no footer and end-of-stream marker precede the end of the file)');
      }
      h = parseKdmv(f.subarray(512, 1024));
      if (h.gdOffset === GD_AT_END) throw malformed('gd_offset', 'the footer leaves the grain directory offset unknown as well');
    }
    const compressed = h.compressAlgorithm === 1;
    if (h.version > 3) throw new BlockError('unsupported', `version: Unsupported VMDK version ${h.version}`, { field: 'version' });
    if (h.version === 3 && !readOnly && !compressed) throw new BlockError('read-only', 'version: VMDK version 3 must be read only', { field: 'version' });
    if (h.numGtesPerGt > 512) throw malformed('num_gtes_per_gt', `L2 table size too big (${h.numGtesPerGt} grain table entries, at most 512)`, HEADER.numGtesPerGt);
    const l1EntrySectors = h.numGtesPerGt * h.granularity;
    if (l1EntrySectors === 0) throw malformed('granularity', `L1 entry size is invalid (granularity ${h.granularity} x ${h.numGtesPerGt} entries per grain table)`, HEADER.granularity);
    if (Math.ceil(fileSize / SECTOR) < h.grainOffset) {
      throw malformed('grain_offset', `File truncated, expecting at least ${h.grainOffset * SECTOR} bytes`, HEADER.grainOffset);
    }
    const rgdOffset = h.flags & FLAG_RGD ? h.rgdOffset * SECTOR : 0;
    return SparseExtent.build(file, h.version, h.flags, h.compressAlgorithm, h.capacity, h.granularity, h.numGtesPerGt,
      Number(h.gdOffset) * SECTOR, rgdOffset);
  }

  /** A COWD (VMFSSPARSE, VMDK3) extent: 4096 entries per grain table, no redundant directory. */
  static async openCowd(file: ProtocolNode, head: Buffer): Promise<SparseExtent> {
    const diskSectors = head.readUInt32LE(12);
    const granularity = head.readUInt32LE(16);
    const gdOffset = head.readUInt32LE(20) * SECTOR;
    const l1Size = head.readUInt32LE(24);
    if (granularity === 0) throw malformed('granularity', 'L1 entry size is invalid (granularity 0)', 16);
    const ext = await SparseExtent.build(file, 1, 0, 0, diskSectors, granularity, 4096, gdOffset, 0, l1Size);
    return ext;
  }

  private static async build(file: ProtocolNode, version: number, flags: number, compressAlgorithm: number, capacity: number,
    granularity: number, gtes: number, gdOffset: number, rgdOffset: number, l1SizeGiven?: number): Promise<SparseExtent> {
    if (granularity > MAX_GRAIN_SECTORS) {
      throw malformed('granularity', `Invalid granularity, image may be corrupt (${granularity} sectors per grain; at most ${MAX_GRAIN_SECTORS}, 1 GiB)`, HEADER.granularity);
    }
    const l1Size = l1SizeGiven ?? Math.ceil(capacity / (gtes * granularity));
    if (l1Size > MAX_GD_ENTRIES) {
      throw malformed('capacity', `L1 size too big: a capacity of ${capacity} sectors needs ${l1Size} grain directory entries (at most ${MAX_GD_ENTRIES})`, HEADER.capacity);
    }
    const fileSize = file.size();
    const gdBytes = l1Size * 4;
    const readGd = async (at: number, field: string): Promise<Uint32Array> => {
      // Nothing is read or allocated for a directory that cannot be in the file.
      if (at + gdBytes > fileSize) {
        throw malformed(field, `the grain directory (${l1Size} entries at ${at}) lies past the end of the file (${fileSize} bytes)`, field === 'rgd_offset' ? HEADER.rgdOffset : HEADER.gdOffset);
      }
      const raw = await file.read(at, gdBytes);
      const gd = new Uint32Array(l1Size);
      for (let i = 0; i < l1Size; i++) gd[i] = raw.readUInt32LE(i * 4);
      return gd;
    };
    const gd = await readGd(gdOffset, 'gd_offset');
    const rgd = rgdOffset ? await readGd(rgdOffset, 'rgd_offset') : null;
    return new SparseExtent(file, version, flags, compressAlgorithm, capacity, granularity, gtes, gd, gdOffset, rgd, rgdOffset);
  }

  private async table(gtSector: number, field = 'grain table'): Promise<Uint32Array> {
    const hit = this.gtCache.get(gtSector);
    if (hit) {
      // most recently used last
      this.gtCache.delete(gtSector);
      this.gtCache.set(gtSector, hit);
      return hit;
    }
    const bytes = this.gtes * 4;
    const at = gtSector * SECTOR;
    if (at + bytes > this.file.size()) {
      throw new BlockError('corrupt', `${field}: the grain table at sector ${gtSector} lies past the end of ${this.file.filename} (${this.file.size()} bytes)`, { field: 'grain_directory', offset: at });
    }
    const raw = await this.file.read(at, bytes);
    const gt = new Uint32Array(this.gtes);
    for (let i = 0; i < this.gtes; i++) gt[i] = raw.readUInt32LE(i * 4);
    if (this.gtCache.size >= GT_CACHE) this.gtCache.delete(this.gtCache.keys().next().value!);
    this.gtCache.set(gtSector, gt);
    return gt;
  }

  /** State of the grain holding extent byte `offset`. */
  async grain(offset: number): Promise<GrainState> {
    const g = Math.floor(offset / this.grainBytes);
    const l1 = Math.floor(g / this.gtes);
    if (l1 >= this.gd.length) throw new BlockError('io', `grain directory: grain ${g} has no directory entry (${this.gd.length} entries)`, { field: 'grain_directory' });
    const gtSector = this.gd[l1];
    if (gtSector === 0) return { kind: 'no-table' };
    const e = (await this.table(gtSector))[g % this.gtes];
    if (this.zeroGrain && e === GTE_ZEROED) return { kind: 'zero' };
    if (e === 0) return { kind: 'unallocated' };
    return { kind: 'data', sector: e };
  }

  /**
   * How far from extent byte `offset` (inside a grain of the same state) the
   * grains stay unallocated (`zero`: stay zeroed), at most `limit` bytes: a
   * directory entry without a table skips its whole table's span at once.
   */
  async runLength(offset: number, limit: number, zero: boolean): Promise<number> {
    const gb = this.grainBytes;
    let pos = (Math.floor(offset / gb) + 1) * gb;
    const end = offset + limit;
    while (pos < end) {
      const g = Math.floor(pos / gb);
      const l1 = Math.floor(g / this.gtes);
      if (l1 >= this.gd.length) break;
      if (this.gd[l1] === 0) {
        if (zero) break;
        pos = (l1 + 1) * this.gtes * gb;
        continue;
      }
      const gt = await this.table(this.gd[l1]);
      let idx = g % this.gtes;
      for (; idx < this.gtes; idx++) {
        const e = gt[idx];
        const isZero = this.zeroGrain && e === GTE_ZEROED;
        if (zero ? !isZero : e !== 0) break;
      }
      pos = (l1 * this.gtes + idx) * gb;
      if (idx < this.gtes) break;
    }
    return Math.min(end, pos) - offset;
  }

  /** Read `length` bytes of an allocated grain at `inGrain`, into `out` at `at`. */
  async readGrain(sector: number, inGrain: number, length: number, out: Buffer, at: number): Promise<void> {
    if (!this.compressed) {
      const host = sector * SECTOR + inGrain;
      if (this.file.readInto) await this.file.readInto(out, at, host, length);
      else (await this.file.read(host, length)).copy(out, at);
      return;
    }
    const grain = await this.inflateGrain(sector);
    if (inGrain + length > grain.length) {
      throw new BlockError('corrupt', `compressed grain at sector ${sector} holds ${grain.length} bytes, fewer than the ${inGrain + length} read`, { field: 'grain', offset: sector * SECTOR });
    }
    grain.copy(out, at, inGrain, inGrain + length);
  }

  private async inflateGrain(sector: number): Promise<Buffer> {
    if (this.lastGrain?.sector === sector) return this.lastGrain.data;
    const at = sector * SECTOR;
    let data: Buffer;
    if (this.hasMarker) {
      const m = await this.file.read(at, 12);
      const size = m.readUInt32LE(8);
      if (size === 0 || size > 2 * this.grainBytes) {
        throw new BlockError('corrupt', `grain marker: the compressed grain at sector ${sector} claims ${size} bytes (1 to ${2 * this.grainBytes})`, { field: 'grain_marker', offset: at });
      }
      data = await this.file.read(at + 12, size);
    } else {
      data = await this.file.read(at, 2 * this.grainBytes);
    }
    let out: Buffer;
    try {
      out = zlib.inflateSync(data, { maxOutputLength: this.grainBytes, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw new BlockError('corrupt', `compressed grain at sector ${sector} does not inflate: ${(e as Error).message}`, { field: 'grain', offset: at, cause: e });
    }
    this.lastGrain = { sector, data: out };
    return out;
  }

  /** Point the grain's entry (in both directories' tables) at `value`. */
  async setEntry(offset: number, value: number): Promise<void> {
    const g = Math.floor(offset / this.grainBytes);
    const l1 = Math.floor(g / this.gtes);
    const idx = g % this.gtes;
    const e = Buffer.alloc(4);
    e.writeUInt32LE(value >>> 0);
    const gtSector = this.gd[l1];
    await this.file.write(gtSector * SECTOR + idx * 4, e);
    if (this.rgd) await this.file.write(this.rgd[l1] * SECTOR + idx * 4, e);
    const cached = this.gtCache.get(gtSector);
    if (cached) cached[idx] = value >>> 0;
    if (this.rgd) this.gtCache.delete(this.rgd[l1]);
  }

  /**
   * A new grain for extent byte `offset`, filled with `grain` (the whole grain:
   * the caller's data over what the backing file or zeroes give), then entered
   * in the grain tables. Returns the grain's sector.
   */
  async allocate(offset: number, grain: Buffer): Promise<number> {
    const st = await this.grain(offset);
    if (st.kind === 'no-table') {
      throw new BlockError('unsupported', `grain directory: the entry for extent offset ${offset} has no grain table, and the reference does not add grain tables`, { field: 'grain_directory' });
    }
    if (this.nextSector >= MAX_EXTENT_SECTORS) throw new BlockError('io', `${this.file.filename}: the extent file is full (2^32 sectors)`);
    const sector = this.nextSector;
    this.nextSector += this.grainSectors;
    await this.file.write(sector * SECTOR, grain);
    await this.setEntry(offset, sector);
    return sector;
  }

  /**
   * A compressed grain, the way QEMU writes one: the whole grain is written
   * first (zeroes or the backing file's data), then the marker and zlib stream
   * over its start, and the next grain starts at the sector after the stream.
   */
  async writeCompressed(offset: number, guestSector: number, data: Buffer, cow: Buffer): Promise<void> {
    const sector = this.nextSector;
    if (sector >= MAX_EXTENT_SECTORS) throw new BlockError('io', `${this.file.filename}: the extent file is full (2^32 sectors)`);
    await this.file.write(sector * SECTOR, cow);
    const z = zlib.deflateSync(data);
    const marker = Buffer.alloc(12);
    marker.writeBigUInt64LE(BigInt(guestSector));
    marker.writeUInt32LE(z.length, 8);
    const rec = Buffer.concat([marker, z]);
    await this.file.write(sector * SECTOR, rec);
    this.nextSector = Math.ceil((sector * SECTOR + rec.length) / SECTOR);
    await this.setEntry(offset, sector);
    this.wroteCompressed = true;
  }

  /** Every allocated grain's sector, for check: [grain index, sector] pairs (bounded by the extent's grain count). */
  async *allocated(): AsyncGenerator<{ offset: number; state: GrainState }> {
    const grains = Math.ceil(this.sectors / this.grainSectors);
    for (let g = 0; g < grains; g++) {
      const offset = g * this.grainBytes;
      yield { offset, state: await this.grain(offset) };
    }
  }

  get directoryOffset(): number { return this.gdOffset; }
  get redundantDirectoryOffset(): number { return this.rgdOffset; }
}
