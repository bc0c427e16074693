/**
 * bochs: Bochs "growing" redolog images, read only, as QEMU 7.2 reads them.
 *
 * Header (512 bytes, little endian):
 *   0x00 magic[32]   "Bochs Virtual HD Image"
 *   0x20 type[16]    "Redolog"
 *   0x30 subtype[16] "Growing" (the only subtype QEMU opens; "Undoable"/"Volatile" are refused)
 *   0x40 version u32 0x00020000 (V2) or 0x00010000 (V1)
 *   0x44 header u32  header size; the catalog starts there
 *   0x48 catalog u32 catalog entries (one per extent)
 *   0x4c bitmap u32  bytes of each extent's sector bitmap
 *   0x50 extent u32  bytes of guest data per extent
 *   V2: 0x54 reserved u32, 0x58 disk u64;  V1: 0x54 disk u64 (virtual size in bytes)
 *
 * The catalog follows the header: u32 per extent, 0xffffffff = not allocated,
 * otherwise the extent's index in the data area (which starts right after the
 * catalog). An allocated extent is its bitmap (rounded up to 512 bytes), then its
 * data; a sector whose bitmap bit is clear reads as zeroes.
 *
 * Memory bound: the catalog (at most 2^20 entries, QEMU's limit: 4 MiB) plus the
 * caller's buffer; reads go sector run by sector run.
 */
import { BlockError, malformed } from '../errors.js';
import { checkRange, type BlockStatus, type ImageNode, type ProtocolNode } from '../node.js';
import type { FormatDriver } from './driver.js';
import { refuseCreate, refuseReadWrite, refuseWrite, wholeDataStatus } from './read-only.js';

const MAGIC = 'Bochs Virtual HD Image';
const V2 = 0x00020000;
const V1 = 0x00010000;
const HEADER = 512;
const SECTOR = 512;
const UNALLOCATED = 0xffffffff;
/** QEMU: at most 1M catalog entries (bximage's largest image, about 8 TB). */
const CATALOG_MAX = 0x100000;
/** QEMU: extents of 512 bytes to 8 MiB, a power of two. */
const EXTENT_MAX = 0x800000;

function cstr(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.toString('latin1', 0, nul < 0 ? len : nul);
}

interface Header { version: number; headerSize: number; catalog: number; bitmap: number; extent: number; disk: number }

function parseHeader(h: Buffer): Header {
  if (h.length < HEADER) throw malformed('header', `the file is ${h.length} bytes, shorter than a bochs header (512)`);
  if (cstr(h, 0, 32) !== MAGIC) throw malformed('magic', 'not a Bochs image (bad magic)', 0);
  if (cstr(h, 0x20, 16) !== 'Redolog') throw malformed('type', `type '${cstr(h, 0x20, 16)}' is not Redolog`, 0x20);
  const sub = cstr(h, 0x30, 16);
  if (sub !== 'Growing') throw new BlockError('unsupported', `subtype: only growing bochs images are supported, not '${sub}'`, { field: 'subtype', offset: 0x30 });
  const version = h.readUInt32LE(0x40);
  if (version !== V2 && version !== V1) throw malformed('version', `version 0x${version.toString(16)} is neither 0x20000 nor 0x10000`, 0x40);
  const disk = Number(h.readBigUInt64LE(version === V1 ? 0x54 : 0x58));
  const hd: Header = { version, headerSize: h.readUInt32LE(0x44), catalog: h.readUInt32LE(0x48), bitmap: h.readUInt32LE(0x4c), extent: h.readUInt32LE(0x50), disk };
  if (hd.catalog > CATALOG_MAX) throw malformed('catalog', `Catalog size is too large (${hd.catalog} entries, at most ${CATALOG_MAX})`, 0x48);
  if (hd.extent < SECTOR) throw malformed('extent', `Extent size must be at least 512 (${hd.extent})`, 0x50);
  if ((hd.extent & (hd.extent - 1)) !== 0) throw malformed('extent', `Extent size ${hd.extent} is not a power of two`, 0x50);
  if (hd.extent > EXTENT_MAX) throw malformed('extent', `Extent size ${hd.extent} is too large (at most ${EXTENT_MAX})`, 0x50);
  if (hd.bitmap === 0 || hd.bitmap * 8 < hd.extent / SECTOR) throw malformed('bitmap', `bitmap of ${hd.bitmap} bytes cannot cover an extent of ${hd.extent / SECTOR} sectors`, 0x4c);
  if (!Number.isSafeInteger(disk)) throw malformed('disk', `disk size ${disk} is beyond any disk`, 0x58);
  const sectors = Math.floor(disk / SECTOR);
  if (hd.catalog < Math.ceil(sectors / (hd.extent / SECTOR))) throw malformed('catalog', `Catalog size is too small for this disk size (${hd.catalog} entries for ${disk} bytes)`, 0x48);
  if (hd.headerSize < HEADER) throw malformed('header', `header size ${hd.headerSize} is smaller than 512`, 0x44);
  return hd;
}

export class BochsImage implements ImageNode {
  readonly driver = 'bochs';
  readonly readOnly = true;
  private readonly dataOffset: number;
  private readonly bitmapBytes: number;
  private readonly extentStride: number;
  private constructor(readonly file: ProtocolNode, private readonly h: Header, private readonly catalog: Uint32Array) {
    this.dataOffset = h.headerSize + 4 * h.catalog;
    this.bitmapBytes = Math.ceil(h.bitmap / SECTOR) * SECTOR;
    this.extentStride = this.bitmapBytes + Math.ceil(h.extent / SECTOR) * SECTOR;
  }

  static async open(file: ProtocolNode, ctx: { readOnly: boolean }): Promise<BochsImage> {
    refuseReadWrite('bochs', ctx.readOnly);
    const h = parseHeader(await file.read(0, Math.min(HEADER, file.size())));
    const fileSize = file.size();
    if (h.headerSize + 4 * h.catalog > fileSize) throw malformed('catalog', `the catalog (${h.catalog} entries at ${h.headerSize}) ends past the end of the file (${fileSize} bytes)`, 0x48);
    const raw = await file.read(h.headerSize, 4 * h.catalog);
    const cat = new Uint32Array(h.catalog);
    const img = new BochsImage(file, h, cat);
    for (let i = 0; i < h.catalog; i++) {
      cat[i] = raw.readUInt32LE(4 * i);
      if (cat[i] === UNALLOCATED) continue;
      const end = img.dataOffset + (cat[i] + 1) * img.extentStride;
      if (end > fileSize) throw malformed('catalog', `entry ${i} points at extent ${cat[i]}, which ends past the end of the file (${fileSize} bytes)`, h.headerSize + 4 * i);
    }
    return img;
  }

  get filename(): string { return this.file.filename; }
  size(): number { return Math.floor(this.h.disk / SECTOR) * SECTOR; }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const e = Math.floor(g / this.h.extent);
      const inExt = g - e * this.h.extent;
      const n = Math.min(length - pos, this.h.extent - inExt);
      const entry = this.catalog[e];
      if (entry !== UNALLOCATED) {
        const base = this.dataOffset + entry * this.extentStride;
        const s0 = Math.floor(inExt / SECTOR);
        const s1 = Math.ceil((inExt + n) / SECTOR);
        const bitmap = await this.file.read(base + (s0 >> 3), ((s1 - 1) >> 3) - (s0 >> 3) + 1);
        const data = await this.file.read(base + this.bitmapBytes + inExt, n);
        for (let s = s0; s < s1; s++) {
          if ((bitmap[(s >> 3) - (s0 >> 3)] >> (s & 7)) & 1) {
            const a = Math.max(inExt, s * SECTOR);
            const b = Math.min(inExt + n, (s + 1) * SECTOR);
            data.copy(out, pos + a - inExt, a - inExt, b - inExt);
          }
        }
      }
      pos += n;
    }
    return out;
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    (await this.read(offset, length)).copy(target, at);
  }

  async write(): Promise<void> { refuseWrite('bochs'); }
  async writeZeroes(): Promise<void> { refuseWrite('bochs'); }
  async discard(): Promise<void> { refuseWrite('bochs'); }
  async flush(): Promise<void> { /* nothing is ever written */ }
  async blockStatus(offset: number, length: number): Promise<BlockStatus> { return wholeDataStatus(this.size(), offset, length); }
  async close(): Promise<void> { return this.file.close(); }
}

export const bochsDriver: FormatDriver = {
  name: 'bochs',
  probe: (head) => {
    if (head.length < HEADER) return 0;
    const v = head.readUInt32LE(0x40);
    return cstr(head, 0, 32) === MAGIC && cstr(head, 0x20, 16) === 'Redolog' && cstr(head, 0x30, 16) === 'Growing' && (v === V2 || v === V1) ? 100 : 0;
  },
  create: async () => refuseCreate('bochs'),
  open: (file, ctx) => BochsImage.open(file, ctx),
  createOptionKeys: [],
  canCreate: false,
};
