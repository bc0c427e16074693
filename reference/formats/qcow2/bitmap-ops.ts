/**
 * qemu-img bitmap on a qcow2 image: --add, --remove, --clear, --enable,
 * --disable. Changes are made in place and the directory is rewritten at a new
 * place (then the old one freed), so the image is consistent after every step;
 * the layout is the reference's own (QEMU rewrites every bitmap on close).
 */
import { BlockError } from '../../errors.js';
import { AUTOCLEAR_BITMAPS, EXT_BITMAPS } from './layout.js';
import type { Qcow2Image } from './image.js';
import {
  BME_FLAG_AUTO, BME_FLAG_IN_USE, MAX_BITMAP_NAME, MAX_BITMAPS, MAX_GRANULARITY_BITS, MIN_GRANULARITY_BITS,
  serializeBitmapDirectory, type Qcow2Bitmap,
} from './bitmaps.js';

export type BitmapOp = { op: 'add'; granularity?: number; disabled?: boolean } | { op: 'remove' | 'clear' | 'enable' | 'disable' };

function fail(op: string, name: string, why: string, option?: string): never {
  throw new BlockError('invalid-option', `Operation ${op} on bitmap ${name} failed: ${why}`, { option });
}

export async function bitmapOperation(img: Qcow2Image, name: string, o: BitmapOp): Promise<void> {
  await img.beginMetadataChange();
  const cs = img.clusterSize;
  const list = [...(img.bitmaps?.bitmaps ?? [])];
  const i = list.findIndex((b) => b.name === name);
  if (o.op === 'add') {
    if (i >= 0) fail('add', name, `Bitmap already exists: ${name}`);
    const g = o.granularity ?? Math.max(65536, cs);
    const bits = Math.log2(g);
    if (!Number.isInteger(bits) || bits < MIN_GRANULARITY_BITS || bits > MAX_GRANULARITY_BITS) fail('add', name, `Granularity must be power of 2 and at least 512 (and at most 2^${MAX_GRANULARITY_BITS})`, 'granularity');
    if (img.header.version < 3) fail('add', name, `Can't make bitmap '${name}' persistent: Cannot store dirty bitmaps in qcow2 v2 files`, 'compat');
    if (Buffer.byteLength(name) > MAX_BITMAP_NAME || !name) fail('add', name, `Bitmap name must be 1 to ${MAX_BITMAP_NAME} bytes long`);
    if (list.length >= MAX_BITMAPS) fail('add', name, `an image holds at most ${MAX_BITMAPS} bitmaps`);
    const tableSize = Math.ceil(Math.ceil(img.size() / g) / (cs * 8));
    const tableOffset = tableSize ? await img.refcounts.alloc(Math.ceil((tableSize * 8) / cs)) : 0;
    if (tableSize) await img.file.write(tableOffset, Buffer.alloc(Math.ceil((tableSize * 8) / cs) * cs));
    list.push({ name, tableOffset, tableSize, flags: o.disabled ? 0 : BME_FLAG_AUTO, type: 1, granularityBits: bits, extra: Buffer.alloc(0), flagsAt: 0 });
  } else {
    if (i < 0) fail(o.op, name, `Dirty bitmap '${name}' not found`);
    const b = list[i];
    if (o.op === 'enable' || o.op === 'disable') {
      list[i] = { ...b, flags: o.op === 'enable' ? b.flags | BME_FLAG_AUTO : b.flags & ~BME_FLAG_AUTO };
    } else {
      await releaseData(img, b, o.op === 'clear');
      if (o.op === 'remove') {
        if (b.tableSize) await img.refcounts.addRange(b.tableOffset, Math.ceil((b.tableSize * 8) / cs), -1);
        list.splice(i, 1);
      } else list[i] = { ...b, flags: b.flags & ~BME_FLAG_IN_USE };
    }
  }
  await writeDirectory(img, list);
  await img.endMetadataChange();
}

/** Free a bitmap's data clusters; with `zeroTable` its table then says "all zeroes". */
async function releaseData(img: Qcow2Image, b: Qcow2Bitmap, zeroTable: boolean): Promise<void> {
  if (!b.tableSize) return;
  const raw = await img.file.read(b.tableOffset, b.tableSize * 8);
  for (let k = 0; k < b.tableSize; k++) {
    const data = Number(raw.readBigUInt64BE(k * 8) & 0x00fffffffffffe00n);
    if (data) await img.refcounts.addRange(data, 1, -1);
  }
  if (zeroTable) await img.file.write(b.tableOffset, Buffer.alloc(b.tableSize * 8));
}

async function writeDirectory(img: Qcow2Image, list: Qcow2Bitmap[]): Promise<void> {
  const cs = img.clusterSize;
  const old = img.bitmaps;
  const others = img.extensions.filter((e) => e.type !== EXT_BITMAPS);
  if (!list.length) {
    img.extensions = others;
    img.header.autoclearFeatures &= ~AUTOCLEAR_BITMAPS;
    img.bitmaps = null;
  } else {
    const bytes = serializeBitmapDirectory(list);
    const offset = await img.refcounts.alloc(Math.ceil(bytes.length / cs));
    await img.file.write(offset, bytes);
    const ext = Buffer.alloc(24);
    ext.writeUInt32BE(list.length, 0);
    ext.writeBigUInt64BE(BigInt(bytes.length), 8);
    ext.writeBigUInt64BE(BigInt(offset), 16);
    img.extensions = [...others, { type: EXT_BITMAPS, data: ext }];
    img.header.autoclearFeatures |= AUTOCLEAR_BITMAPS;
    let pos = 0;
    img.bitmaps = { offset, size: bytes.length, bitmaps: list.map((b) => {
      const at = offset + pos + 12;
      pos += Math.ceil((24 + b.extra.length + Buffer.byteLength(b.name)) / 8) * 8;
      return { ...b, flagsAt: at };
    }) };
  }
  await img.rewriteHeader();
  if (old?.size) await img.refcounts.addRange(old.offset, Math.ceil(old.size / cs), -1);
}
