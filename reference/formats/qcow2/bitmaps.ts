/**
 * qcow2 persistent dirty bitmaps (docs/interop/qcow2.txt, "Bitmaps"): the
 * bitmaps header extension, the bitmap directory, bitmap tables, and keeping
 * enabled bitmaps up to date when the guest writes.
 *
 * Extension: u32 nb_bitmaps, u32 reserved, u64 bitmap_directory_size,
 * u64 bitmap_directory_offset. It counts only while autoclear bit 0 is set.
 *
 * Directory entry (8-byte aligned): u64 bitmap_table_offset, u32
 * bitmap_table_size (entries), u32 flags (bit 0 in-use, 1 auto, 2
 * extra_data_compatible), u8 type (1: dirty tracking), u8 granularity_bits,
 * u16 name_size, u32 extra_data_size, extra data, name.
 *
 * Table entry: bits 9..55 the offset of a data cluster; offset 0 with bit 0
 * set means "all ones", clear "all zeroes". Bit k of the bitmap is bit k%8 of
 * byte k/8 of the bitmap's data, and covers guest bytes [k*g, (k+1)*g).
 */
import { BlockError } from '../../errors.js';
import type { BlockNode } from '../../node.js';
import { EXT_BITMAPS } from './layout.js';

export const BME_FLAG_IN_USE = 1;
export const BME_FLAG_AUTO = 2;
export const BME_FLAG_EXTRA_COMPAT = 4;
/** QEMU's limits (block/qcow2-bitmap.c, qcow2.h) */
export const MAX_BITMAPS = 65535;
export const MAX_BITMAP_DIRECTORY_SIZE = 1024 * MAX_BITMAPS;
export const MAX_BITMAP_TABLE_ENTRIES = 0x4000000;
export const MAX_BITMAP_NAME = 1023;
export const MIN_GRANULARITY_BITS = 9;
export const MAX_GRANULARITY_BITS = 31;

export interface Qcow2Bitmap {
  name: string;
  tableOffset: number;
  tableSize: number;
  flags: number;
  type: number;
  granularityBits: number;
  extra: Buffer;
  /** where this entry's flags sit in the file, to update them in place */
  flagsAt: number;
}

export interface BitmapDirectory {
  offset: number;
  size: number;
  bitmaps: Qcow2Bitmap[];
}

const err = (msg: string, offset?: number) => new BlockError('malformed', `bitmap directory: ${msg}`, { field: 'bitmap directory', offset });

/** The bitmaps extension's directory, bounded by QEMU's limits and by the file. */
export async function readBitmapDirectory(file: BlockNode, ext: Buffer, clusterSize: number): Promise<BitmapDirectory> {
  if (ext.length < 24) throw err(`the bitmaps extension has ${ext.length} bytes, not 24`);
  const nb = ext.readUInt32BE(0);
  if (ext.readUInt32BE(4) !== 0) throw err('the reserved field of the bitmaps extension is not zero');
  const size64 = ext.readBigUInt64BE(8);
  const off64 = ext.readBigUInt64BE(16);
  if (nb === 0 || nb > MAX_BITMAPS) throw err(`nb_bitmaps ${nb} is out of range (1..${MAX_BITMAPS})`);
  if (size64 > BigInt(MAX_BITMAP_DIRECTORY_SIZE)) throw err(`bitmap_directory_size ${size64} exceeds QEMU's limit of ${MAX_BITMAP_DIRECTORY_SIZE}`);
  const size = Number(size64);
  const offset = off64 > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(off64);
  if (offset % clusterSize !== 0 || offset < clusterSize) throw err(`bitmap_directory_offset 0x${offset.toString(16)} is not a cluster-aligned offset past the header`);
  if (offset + size > file.size()) throw err(`the directory (${size} bytes at 0x${offset.toString(16)}) points outside the file (${file.size()} bytes)`, offset);
  const raw = await file.read(offset, size);
  const bitmaps: Qcow2Bitmap[] = [];
  let pos = 0;
  for (let i = 0; i < nb; i++) {
    pos = Math.ceil(pos / 8) * 8;
    if (pos + 24 > size) throw err(`entry ${i} runs past the end of the directory`, offset + pos);
    const tableOffset = Number(raw.readBigUInt64BE(pos) & 0x00fffffffffffe00n);
    const tableSize = raw.readUInt32BE(pos + 8);
    const flags = raw.readUInt32BE(pos + 12);
    const type = raw[pos + 16];
    const granularityBits = raw[pos + 17];
    const nameSize = raw.readUInt16BE(pos + 18);
    const extraSize = raw.readUInt32BE(pos + 20);
    if (pos + 24 + extraSize + nameSize > size) throw err(`entry ${i} runs past the end of the directory`, offset + pos);
    if (nameSize === 0 || nameSize > MAX_BITMAP_NAME) throw err(`entry ${i}: name_size ${nameSize} is out of range (1..${MAX_BITMAP_NAME})`, offset + pos + 18);
    if (granularityBits < MIN_GRANULARITY_BITS || granularityBits > MAX_GRANULARITY_BITS) throw err(`entry ${i}: granularity_bits ${granularityBits} is out of range (${MIN_GRANULARITY_BITS}..${MAX_GRANULARITY_BITS})`, offset + pos + 17);
    if (tableSize > MAX_BITMAP_TABLE_ENTRIES) throw err(`entry ${i}: bitmap_table_size ${tableSize} exceeds QEMU's limit of ${MAX_BITMAP_TABLE_ENTRIES}`, offset + pos + 8);
    if (tableSize && (tableOffset % clusterSize !== 0 || tableOffset < clusterSize || tableOffset + tableSize * 8 > file.size())) {
      throw err(`entry ${i}: bitmap table at 0x${tableOffset.toString(16)} (${tableSize} entries) points outside the file`, offset + pos);
    }
    const extra = Buffer.from(raw.subarray(pos + 24, pos + 24 + extraSize));
    const name = raw.toString('utf8', pos + 24 + extraSize, pos + 24 + extraSize + nameSize);
    bitmaps.push({ name, tableOffset, tableSize, flags, type, granularityBits, extra, flagsAt: offset + pos + 12 });
    pos += 24 + extraSize + nameSize;
  }
  return { offset, size, bitmaps };
}

/** qemu-img info's format-specific "bitmaps" list. */
export function bitmapsInfo(dir: BitmapDirectory): Array<{ flags: string[]; name: string; granularity: number }> {
  return dir.bitmaps.map((b) => {
    const flags: string[] = [];
    if (b.flags & BME_FLAG_IN_USE) flags.push('in-use');
    if (b.flags & BME_FLAG_AUTO) flags.push('auto');
    return { flags, name: b.name, granularity: 2 ** b.granularityBits };
  });
}

/** Bitmaps a guest write must mark: enabled (auto) and consistent (not in use). */
export function trackingBitmaps(dir: BitmapDirectory | null): Qcow2Bitmap[] {
  return dir ? dir.bitmaps.filter((b) => b.type === 1 && (b.flags & BME_FLAG_AUTO) && !(b.flags & BME_FLAG_IN_USE)) : [];
}

export interface BitmapWriter {
  file: BlockNode;
  clusterSize: number;
  allocCluster(): Promise<number>;
}

/**
 * Set the bits covering guest bytes [offset, offset+length) in one bitmap, in
 * place: an all-zero table entry gets a data cluster of its own.
 */
export async function markDirty(w: BitmapWriter, b: Qcow2Bitmap, offset: number, length: number): Promise<void> {
  if (length <= 0) return;
  const g = 2 ** b.granularityBits;
  const bitsPerCluster = w.clusterSize * 8;
  const firstBit = Math.floor(offset / g);
  const lastBit = Math.floor((offset + length - 1) / g);
  for (let j = Math.floor(firstBit / bitsPerCluster); j <= Math.floor(lastBit / bitsPerCluster); j++) {
    if (j >= b.tableSize) break;
    const at = b.tableOffset + j * 8;
    const e = (await w.file.read(at, 8)).readBigUInt64BE(0);
    let data = Number(e & 0x00fffffffffffe00n);
    if (!data && (e & 1n)) continue; // all ones already
    const buf = data ? await w.file.read(data, w.clusterSize) : Buffer.alloc(w.clusterSize);
    const from = Math.max(firstBit, j * bitsPerCluster) - j * bitsPerCluster;
    const to = Math.min(lastBit, (j + 1) * bitsPerCluster - 1) - j * bitsPerCluster;
    for (let k = from; k <= to; k++) {
      if ((k & 7) === 0 && k + 7 <= to) {
        buf[k >> 3] = 0xff;
        k += 7;
      } else buf[k >> 3] |= 1 << (k & 7);
    }
    if (!data) {
      data = await w.allocCluster();
      await w.file.write(data, buf);
      const eb = Buffer.alloc(8);
      eb.writeBigUInt64BE(BigInt(data));
      await w.file.write(at, eb);
    } else await w.file.write(data, buf);
  }
}

export { EXT_BITMAPS };

/** The directory's bytes, entries 8-byte aligned (the last one padded too, as QEMU writes it). */
export function serializeBitmapDirectory(list: readonly Qcow2Bitmap[]): Buffer {
  const parts: Buffer[] = [];
  for (const b of list) {
    const name = Buffer.from(b.name, 'utf8');
    const len = 24 + b.extra.length + name.length;
    const e = Buffer.alloc(Math.ceil(len / 8) * 8);
    e.writeBigUInt64BE(BigInt(b.tableOffset), 0);
    e.writeUInt32BE(b.tableSize, 8);
    e.writeUInt32BE(b.flags >>> 0, 12);
    e[16] = b.type;
    e[17] = b.granularityBits;
    e.writeUInt16BE(name.length, 18);
    e.writeUInt32BE(b.extra.length, 20);
    b.extra.copy(e, 24);
    name.copy(e, 24 + b.extra.length);
    parts.push(e);
  }
  return Buffer.concat(parts);
}
