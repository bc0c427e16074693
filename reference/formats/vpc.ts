/**
 * vpc: Connectix / Microsoft Virtual PC disk images (VHD), as QEMU 7.2 reads and writes them.
 *
 * Every field is big endian. The 512-byte footer ("hard disk footer"):
 *
 *   0x00 cookie "conectix"      0x08 features u32 (2)        0x0c version u32 (0x00010000)
 *   0x10 data_offset u64        (dynamic header offset; all ones for a fixed disk)
 *   0x18 timestamp u32          (seconds since 2000-01-01 UTC)
 *   0x1c creator_app[4]         ("qemu", or "qem2" with force_size)
 *   0x20 creator major/minor u16 (5.3)   0x24 creator_os[4] ("Wi2k")
 *   0x28 original_size u64      0x30 current_size u64
 *   0x38 cylinders u16, heads u8, sectors_per_track u8
 *   0x3c disk_type u32 (2 fixed, 3 dynamic, 4 differencing)
 *   0x40 checksum u32           (one's complement of the byte sum, this field as zero)
 *   0x44 uuid[16]               0x54 saved_state u8
 *
 * A fixed disk is the raw disk followed by the footer. A dynamic disk is a
 * footer copy at 0, the 1024-byte dynamic header ("cxsparse") at 512, the block
 * allocation table (BAT, one u32 sector number per 2 MiB block, 0xffffffff
 * unallocated) at 1536, then blocks: a sector bitmap (512 bytes for 2 MiB
 * blocks) followed by the block's data, and the footer again at the very end.
 * QEMU sets every bitmap bit when it allocates a block and never looks at them.
 *
 * The disk size a VHD reader believes is cylinders x heads x sectors x 512
 * unless the creator is one known to use current_size, or the geometry is the
 * maximum 65535/16/255: that is why qemu-img rounds sizes up to a geometry.
 */
import { randomBytes } from 'node:crypto';
import { writeZeroesByWriting, checkRange, type BlockStatus, type ImageNode, type ProtocolNode } from '../node.js';
import { BlockError, malformed } from '../errors.js';
import type { FormatDriver } from './driver.js';
import type { VpcCreateOptions } from '../types/create-vpc.js';

const SECTOR = 512;
const FOOTER_SIZE = 512;
const DYN_HEADER_SIZE = 1024;
const BLOCK_SIZE = 2 * 1024 * 1024;
const UNALLOCATED = 0xffffffff;
export const TYPE_FIXED = 2;
export const TYPE_DYNAMIC = 3;
const TYPE_DIFFERENCING = 4;
/** seconds from the Unix epoch to 2000-01-01 00:00:00 UTC */
const VHD_EPOCH = 946684800;
const CHS_MAX_C = 65535;
const CHS_MAX_H = 16;
const CHS_MAX_S = 255;
export const VHD_MAX_GEOMETRY = CHS_MAX_C * CHS_MAX_H * CHS_MAX_S;
/** QEMU's limit: 2040 GiB in sectors */
export const VHD_MAX_SECTORS = 0xff000000;

/** Footer field offsets (the table above), for crafted images and masks. */
export const FOOTER = {
  cookie: 0x00, features: 0x08, version: 0x0c, dataOffset: 0x10, timestamp: 0x18, creatorApp: 0x1c,
  creatorVer: 0x20, creatorOs: 0x24, origSize: 0x28, currentSize: 0x30, cyls: 0x38, heads: 0x3a,
  secs: 0x3b, diskType: 0x3c, checksum: 0x40, uuid: 0x44, savedState: 0x54,
} as const;
/** Dynamic disk header field offsets. */
export const DYN = { cookie: 0x00, dataOffset: 0x08, tableOffset: 0x10, version: 0x18, maxTableEntries: 0x1c, blockSize: 0x20, checksum: 0x24 } as const;

/** One's complement of the byte sum, the checksum field counted as zero. */
export function vpcChecksum(buf: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += buf[i];
  return ~sum >>> 0;
}

interface Geometry { cyls: number; heads: number; secs: number }

/**
 * The VHD specification's CHS algorithm as QEMU codes it, including its
 * uint8 heads (the truncation never changes the outcome, but we keep it).
 */
function geometryFor(totalSectors: number): Geometry {
  const total = Math.min(totalSectors, VHD_MAX_GEOMETRY);
  let secs: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    secs = 255;
    heads = 16;
    cth = Math.floor(total / secs);
  } else {
    secs = 17;
    cth = Math.floor(total / secs);
    heads = Math.ceil(cth / 1024) & 0xff;
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      secs = 31;
      heads = 16;
      cth = Math.floor(total / secs);
    }
    if (cth >= heads * 1024) {
      secs = 63;
      heads = 16;
      cth = Math.floor(total / secs);
    }
  }
  return { cyls: Math.floor(cth / heads) & 0xffff, heads, secs };
}

/**
 * The geometry and sector count of a new image of `size` bytes (a multiple of
 * 512): the smallest geometry holding it, or the maximum geometry with the
 * exact size (force_size, or sizes beyond what a geometry can describe).
 */
export function vpcGeometry(size: number, forceSize: boolean): Geometry & { totalSectors: number } {
  let g: Geometry = { cyls: 0, heads: 0, secs: 0 };
  if (forceSize) {
    g = { cyls: CHS_MAX_C, heads: CHS_MAX_H, secs: CHS_MAX_S };
  } else {
    const want = Math.min(VHD_MAX_GEOMETRY, Math.floor(size / SECTOR));
    for (let i = 0; want > g.cyls * g.heads * g.secs; i++) g = geometryFor(want + i);
  }
  const product = g.cyls * g.heads * g.secs;
  const totalSectors = product === VHD_MAX_GEOMETRY ? Math.floor(size / SECTOR) : product;
  return { ...g, totalSectors };
}

/** Creators whose images mean current_size, not the geometry (QEMU's list). */
function usesCurrentSize(app: Buffer): boolean {
  const s = app.toString('latin1');
  return s === 'win ' || s === 'qem2' || s === 'd2v ' || s === 'CTXS' || s === 'tap\0';
}

function bitmapSizeOf(blockSize: number): number {
  return (Math.floor(blockSize / (8 * SECTOR)) + 511) & ~511;
}

interface Dynamic {
  blockSize: number;
  bitmapSize: number;
  batOffset: number;
  bat: Uint32Array;
  freeOffset: number;
}

export class VpcImage implements ImageNode {
  readonly driver = 'vpc';
  readonly dirty = false;
  private lastBitmap = -1;
  private constructor(
    readonly file: ProtocolNode,
    private readonly footer: Buffer,
    private readonly totalSize: number,
    readonly fixed: boolean,
    private readonly dyn: Dynamic | null,
  ) {}

  get clusterSize(): number | undefined { return this.dyn ? this.dyn.blockSize : undefined; }

  static async open(file: ProtocolNode): Promise<VpcImage> {
    const fileSize = file.size();
    let footer: Buffer = Buffer.alloc(FOOTER_SIZE);
    (await file.read(0, Math.min(FOOTER_SIZE, fileSize))).copy(footer);
    let headerParsed = true; // the footer copy at 0 means a dynamic (or differencing) disk
    if (footer.toString('latin1', 0, 8) !== 'conectix') {
      if (fileSize < FOOTER_SIZE) throw malformed('footer', `File too small for a VHD header (${fileSize} bytes)`);
      footer = await file.read(fileSize - FOOTER_SIZE, FOOTER_SIZE);
      if (footer.toString('latin1', 0, 8) !== 'conectix') throw new BlockError('unknown-format', 'cookie: invalid VPC image (no "conectix" footer at the start or the end of the file)', { field: 'cookie' });
      if (footer.readUInt32BE(FOOTER.diskType) !== TYPE_FIXED) {
        throw malformed('disk_type', `invalid VPC image: a footer only at the end must be a fixed disk's (type 2), not type ${footer.readUInt32BE(FOOTER.diskType)}`, fileSize - FOOTER_SIZE + FOOTER.diskType);
      }
      headerParsed = false;
    }
    const stored = footer.readUInt32BE(FOOTER.checksum);
    const want = vpcChecksum(footer, FOOTER.checksum);
    if (stored !== want) throw malformed('checksum', `Incorrect header checksum (stored 0x${stored.toString(16)}, computed 0x${want.toString(16)})`, FOOTER.checksum);
    let sectors = footer.readUInt16BE(FOOTER.cyls) * footer[FOOTER.heads] * footer[FOOTER.secs];
    if (usesCurrentSize(footer.subarray(FOOTER.creatorApp, FOOTER.creatorApp + 4)) || sectors === VHD_MAX_GEOMETRY) {
      sectors = Math.floor(Number(footer.readBigUInt64BE(FOOTER.currentSize)) / SECTOR);
    }
    if (sectors > VHD_MAX_SECTORS) throw new BlockError('unsupported', `current_size: the disk is ${sectors} sectors, more than the 2040 GiB (0xff000000 sectors) QEMU allows (File too large)`, { field: 'current_size' });
    const totalSize = sectors * SECTOR;
    const type = footer.readUInt32BE(FOOTER.diskType);
    if (type === TYPE_DIFFERENCING) throw new BlockError('unsupported', 'disk_type: differencing VHD images are not supported', { field: 'disk_type' });
    if (!headerParsed) {
      // Guest data lives in the file itself: the disk must fit in front of the footer.
      if (totalSize > fileSize - FOOTER_SIZE) throw malformed('current_size', `the fixed disk (${totalSize} bytes) does not fit in the file (${fileSize - FOOTER_SIZE} bytes before the footer)`);
      return new VpcImage(file, footer, totalSize, true, null);
    }
    const dyn = await VpcImage.openDynamic(file, footer, totalSize, fileSize);
    // Like QEMU, the footer's disk type decides how guest I/O goes, whatever the layout.
    if (type === TYPE_FIXED && totalSize > fileSize - FOOTER_SIZE) throw malformed('current_size', `the fixed disk (${totalSize} bytes) does not fit in the file`);
    return new VpcImage(file, footer, totalSize, type === TYPE_FIXED, type === TYPE_FIXED ? null : dyn);
  }

  private static async openDynamic(file: ProtocolNode, footer: Buffer, totalSize: number, fileSize: number): Promise<Dynamic> {
    const dataOffset = footer.readBigUInt64BE(FOOTER.dataOffset);
    if (dataOffset + BigInt(DYN_HEADER_SIZE) > BigInt(fileSize)) {
      throw malformed('data_offset', `the dynamic disk header (at ${dataOffset}) is not inside the file (${fileSize} bytes)`, FOOTER.dataOffset);
    }
    const h = await file.read(Number(dataOffset), DYN_HEADER_SIZE);
    if (h.toString('latin1', 0, 8) !== 'cxsparse') throw malformed('cookie', 'Invalid header magic (the dynamic disk header does not start with "cxsparse")', Number(dataOffset));
    const blockSize = h.readUInt32BE(DYN.blockSize);
    if (blockSize < SECTOR || (blockSize & (blockSize - 1)) !== 0) throw malformed('block_size', `Invalid block size ${blockSize} (a power of two of at least 512)`, Number(dataOffset) + DYN.blockSize);
    const entries = h.readInt32BE(DYN.maxTableEntries);
    if (totalSize / blockSize > 0xffffffff) throw malformed('max_table_entries', 'Too many blocks', Number(dataOffset) + DYN.maxTableEntries);
    if (entries < 0 || entries * blockSize < totalSize) {
      throw malformed('max_table_entries', `Page table too small: ${h.readUInt32BE(DYN.maxTableEntries)} entries of ${blockSize} bytes cannot hold ${totalSize} bytes`, Number(dataOffset) + DYN.maxTableEntries);
    }
    if (entries > Math.floor(0x7fffffff / 4)) throw malformed('max_table_entries', `Max Table Entries too large (${entries})`, Number(dataOffset) + DYN.maxTableEntries);
    const batOffset = h.readBigUInt64BE(DYN.tableOffset);
    const batBytes = entries * 4;
    // Nothing is read or allocated for a table that cannot be in the file (QEMU finds it "truncated").
    if (batOffset + BigInt(batBytes) > BigInt(fileSize)) {
      throw malformed('table_offset', `block-vpc: the block allocation table (${batBytes} bytes at ${batOffset}) ends after the end of file (${fileSize}). The image has been truncated.`, Number(dataOffset) + DYN.tableOffset);
    }
    const bat = new Uint32Array(entries);
    const raw = await file.read(Number(batOffset), batBytes);
    const bitmapSize = bitmapSizeOf(blockSize);
    let freeOffset = Math.ceil((Number(batOffset) + batBytes) / SECTOR) * SECTOR;
    const metaEnd = freeOffset;
    const starts: number[] = [];
    for (let i = 0; i < entries; i++) {
      const e = raw.readUInt32BE(i * 4);
      bat[i] = e;
      if (e === UNALLOCATED) continue;
      const start = e * SECTOR;
      const next = start + bitmapSize + blockSize;
      if (next > freeOffset) freeOffset = next;
      // QEMU trusts these; a block over the footer copy, the header or the table would
      // make guest writes overwrite metadata, so the reference refuses such an image.
      if (start < metaEnd) {
        throw malformed('bat', `entry ${i} puts block ${i} at ${start}, inside the image's metadata (footer, dynamic header and table end at ${metaEnd})`, Number(batOffset) + 4 * i);
      }
      starts.push(start);
    }
    if (freeOffset > fileSize) {
      throw malformed('bat', `block-vpc: free_data_block_offset points after the end of file (${freeOffset} > ${fileSize}). The image has been truncated.`, Number(batOffset));
    }
    starts.sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++) {
      if (starts[i] < starts[i - 1] + bitmapSize + blockSize) throw malformed('bat', `two blocks overlap in the file (at ${starts[i - 1]} and ${starts[i]})`, Number(batOffset));
    }
    return { blockSize, bitmapSize, batOffset: Number(batOffset), bat, freeOffset };
  }

  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  size(): number { return this.totalSize; }

  /** Host offset of guest byte `g`, or -1 when its block is unallocated. */
  private hostOf(g: number): number {
    const d = this.dyn!;
    const idx = Math.floor(g / d.blockSize);
    if (idx >= d.bat.length || d.bat[idx] === UNALLOCATED) return -1;
    return d.bat[idx] * SECTOR + d.bitmapSize + (g % d.blockSize);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (!this.dyn) return this.file.read(offset, length);
    const out = Buffer.alloc(length);
    const bs = this.dyn.blockSize;
    for (let pos = 0; pos < length;) {
      const g = offset + pos;
      const n = Math.min(length - pos, bs - (g % bs));
      const host = this.hostOf(g);
      if (host >= 0) {
        if (this.file.readInto) await this.file.readInto(out, pos, host, n);
        else (await this.file.read(host, n)).copy(out, pos);
      }
      pos += n;
    }
    return out;
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    if (!this.dyn && this.file.readInto) {
      checkRange(this, offset, length);
      return this.file.readInto(target, at, offset, length);
    }
    (await this.read(offset, length)).copy(target, at);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    if (!this.dyn) return this.file.write(offset, data);
    const d = this.dyn;
    for (let pos = 0; pos < data.length;) {
      const g = offset + pos;
      const idx = Math.floor(g / d.blockSize);
      const n = Math.min(data.length - pos, d.blockSize - (g % d.blockSize));
      let host = this.hostOf(g);
      if (host >= 0) {
        // QEMU rewrites a block's bitmap (all ones) on the first write to it in a row.
        const bitmapAt = d.bat[idx] * SECTOR;
        if (this.lastBitmap !== bitmapAt) {
          this.lastBitmap = bitmapAt;
          await this.file.write(bitmapAt, Buffer.alloc(d.bitmapSize, 0xff));
        }
      } else {
        host = await this.allocate(idx) + (g % d.blockSize);
      }
      await this.file.write(host, data.subarray(pos, pos + n));
      pos += n;
    }
  }

  /** A new block goes where the footer was: bitmap, then the footer past the block, then the BAT entry. */
  private async allocate(idx: number): Promise<number> {
    const d = this.dyn!;
    const at = d.freeOffset;
    await this.file.write(at, Buffer.alloc(d.bitmapSize, 0xff));
    d.freeOffset += d.bitmapSize + d.blockSize;
    await this.file.write(d.freeOffset, this.footer);
    d.bat[idx] = at / SECTOR;
    const e = Buffer.alloc(4);
    e.writeUInt32BE(d.bat[idx]);
    await this.file.write(d.batOffset + 4 * idx, e);
    return at + d.bitmapSize;
  }

  /** vpc has no zero flag: QEMU's generic fallback writes zeroes (allocating). */
  async writeZeroes(offset: number, length: number): Promise<void> {
    return writeZeroesByWriting(this, offset, length);
  }

  /** QEMU 7.2's vpc has no discard: the hint is ignored. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  flush(): Promise<void> { return this.file.flush(); }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const end = Math.min(this.size(), offset + length);
    if (!this.dyn) {
      // Fixed: the guest offset is the file offset; the file says data or hole.
      const f = await this.file.blockStatus(offset, end - offset);
      return { offset, length: Math.min(end - offset, f.length), data: true, zero: f.zero, present: true, depth: 0, hostOffset: offset };
    }
    const bs = this.dyn.blockSize;
    const host = this.hostOf(offset);
    if (host >= 0) {
      const n = Math.min(end, (Math.floor(offset / bs) + 1) * bs) - offset;
      return { offset, length: n, data: true, zero: false, present: true, depth: 0, hostOffset: host };
    }
    // Unallocated blocks read as zeroes; QEMU merges a run of them.
    let stop = Math.min(end, (Math.floor(offset / bs) + 1) * bs);
    while (stop < end && this.hostOf(stop) < 0) stop = Math.min(end, stop + bs);
    return { offset, length: stop - offset, data: false, zero: true, present: true, depth: 0 };
  }

  close(): Promise<void> { return this.file.close(); }
}

/** The footer qemu-img 7.2 writes (its timestamp and UUID are the random fields). */
export function vpcFooter(size: number, g: Geometry, type: number, forceSize: boolean, now = Date.now()): Buffer {
  const f = Buffer.alloc(FOOTER_SIZE);
  f.write('conectix', FOOTER.cookie, 'latin1');
  f.writeUInt32BE(2, FOOTER.features);
  f.writeUInt32BE(0x00010000, FOOTER.version);
  f.writeBigUInt64BE(type === TYPE_DYNAMIC ? BigInt(FOOTER_SIZE) : 0xffffffffffffffffn, FOOTER.dataOffset);
  f.writeUInt32BE((Math.floor(now / 1000) - VHD_EPOCH) >>> 0, FOOTER.timestamp);
  f.write(forceSize ? 'qem2' : 'qemu', FOOTER.creatorApp, 'latin1');
  f.writeUInt16BE(5, FOOTER.creatorVer);
  f.writeUInt16BE(3, FOOTER.creatorVer + 2);
  f.write('Wi2k', FOOTER.creatorOs, 'latin1');
  f.writeBigUInt64BE(BigInt(size), FOOTER.origSize);
  f.writeBigUInt64BE(BigInt(size), FOOTER.currentSize);
  f.writeUInt16BE(g.cyls, FOOTER.cyls);
  f[FOOTER.heads] = g.heads;
  f[FOOTER.secs] = g.secs;
  f.writeUInt32BE(type, FOOTER.diskType);
  const uuid = randomBytes(16);
  uuid[6] = (uuid[6] & 0x0f) | 0x40;
  uuid[8] = (uuid[8] & 0x3f) | 0x80;
  uuid.copy(f, FOOTER.uuid);
  f.writeUInt32BE(vpcChecksum(f, FOOTER.checksum), FOOTER.checksum);
  return f;
}

/** Creation, byte for byte as qemu-img 7.2 writes it. */
async function createVpc(file: ProtocolNode, opts: VpcCreateOptions): Promise<void> {
  const forceSize = opts.force_size === true;
  let size = opts.size ?? 0;
  // qemu-img first rounds the size up to what the geometry holds, then builds for that size.
  if (!forceSize) size = vpcGeometry(size, false).totalSectors * SECTOR;
  const g = vpcGeometry(size, forceSize);
  if (g.totalSectors > VHD_MAX_SECTORS) {
    throw new BlockError('invalid-size', `size: The image size is too large for file format 'vpc' (${size} bytes; at most 2040 GiB, 2190433320960 bytes)`, { option: 'size', value: size });
  }
  const type = opts.subformat === 'fixed' ? TYPE_FIXED : TYPE_DYNAMIC;
  const footer = vpcFooter(size, g, type, forceSize);
  if (type === TYPE_FIXED) {
    await file.truncate(size + FOOTER_SIZE, 'off');
    await file.write(size, footer);
    return;
  }
  const entries = Math.ceil(g.totalSectors / (BLOCK_SIZE / SECTOR));
  const batBytes = Math.ceil((entries * 4) / SECTOR) * SECTOR;
  const h = Buffer.alloc(DYN_HEADER_SIZE);
  h.write('cxsparse', DYN.cookie, 'latin1');
  h.writeBigUInt64BE(0xffffffffffffffffn, DYN.dataOffset);
  h.writeBigUInt64BE(3n * BigInt(SECTOR), DYN.tableOffset);
  h.writeUInt32BE(0x00010000, DYN.version);
  h.writeUInt32BE(entries, DYN.maxTableEntries);
  h.writeUInt32BE(BLOCK_SIZE, DYN.blockSize);
  h.writeUInt32BE(vpcChecksum(h, DYN.checksum), DYN.checksum);
  await file.write(0, footer);
  await file.write(FOOTER_SIZE, h);
  // The BAT: all entries unallocated, whole sectors of 0xff, in 1 MiB pieces.
  const chunk = Buffer.alloc(Math.min(batBytes, 1 << 20), 0xff);
  for (let at = 0; at < batBytes; at += chunk.length) {
    await file.write(3 * SECTOR + at, chunk.subarray(0, Math.min(chunk.length, batBytes - at)));
  }
  await file.write(3 * SECTOR + batBytes, footer);
}

export const vpcDriver: FormatDriver = {
  name: 'vpc',
  // QEMU probes only the footer copy at the start: a fixed VHD is probed as raw.
  probe: (head) => (head.length >= 8 && head.toString('latin1', 0, 8) === 'conectix' ? 100 : 0),
  create: (file, options) => createVpc(file, options as VpcCreateOptions),
  async open(file) {
    return VpcImage.open(file);
  },
  createOptionKeys: ['size', 'subformat', 'force_size', 'preallocation', 'nocow', 'extent_size_hint'],
};
