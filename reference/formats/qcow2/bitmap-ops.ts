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
  markDirty, serializeBitmapDirectory, type Qcow2Bitmap,
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

const OFFSET_MASK = 0x00fffffffffffe00n;

/**
 * The guest ranges a bitmap marks, in order, as [offset, length] runs clipped
 * to `size`: read one table entry (one data cluster) at a time, so memory is
 * one cluster plus the runs.
 */
export async function markedRanges(img: Qcow2Image, b: Qcow2Bitmap, size: number): Promise<Array<[number, number]>> {
  const cs = img.clusterSize;
  const g = 2 ** b.granularityBits;
  const bitsPerCluster = cs * 8;
  const runs: Array<[number, number]> = [];
  const add = (from: number, to: number) => {
    const start = from * g;
    const end = Math.min(size, to * g);
    if (end <= start) return;
    const lastRun = runs[runs.length - 1];
    if (lastRun && lastRun[0] + lastRun[1] === start) lastRun[1] += end - start;
    else runs.push([start, end - start]);
  };
  if (!b.tableSize) return runs;
  const table = await img.file.read(b.tableOffset, b.tableSize * 8);
  for (let j = 0; j < b.tableSize; j++) {
    const e = table.readBigUInt64BE(j * 8);
    const data = Number(e & OFFSET_MASK);
    const base = j * bitsPerCluster;
    if (!data) {
      if (e & 1n) add(base, base + bitsPerCluster);
      continue;
    }
    if (data + cs > img.file.size()) throw new BlockError('malformed', `bitmap '${b.name}': a data cluster at 0x${data.toString(16)} lies past the end of the file`, { field: 'bitmap table', offset: data });
    const block = await img.file.read(data, cs);
    let runStart = -1;
    for (let k = 0; k <= bitsPerCluster; k++) {
      const set = k < bitsPerCluster && (block[k >> 3] & (1 << (k & 7))) !== 0;
      if (set && runStart < 0) runStart = k;
      else if (!set && runStart >= 0) {
        add(base + runStart, base + k);
        runStart = -1;
      }
    }
  }
  return runs;
}

/**
 * qemu-img bitmap --merge SOURCE [-b FILE [-F FMT]] FILE BITMAP: every chunk the
 * source bitmap marks gets marked in the target (granularities may differ, as
 * in QEMU: a source chunk marks every target chunk it touches). The source is
 * read before the target changes, so a refusal leaves the target untouched.
 */
export async function mergeBitmap(img: Qcow2Image, name: string, source: Qcow2Image, sourceName: string): Promise<void> {
  const target = img.bitmaps?.bitmaps.find((b) => b.name === name);
  if (!target) fail('merge', name, `Dirty bitmap '${name}' not found`);
  const src = source.bitmaps?.bitmaps.find((b) => b.name === sourceName);
  if (!src) fail('merge', name, `Dirty bitmap '${sourceName}' not found`);
  if (src.flags & BME_FLAG_IN_USE) fail('merge', name, `Bitmap '${sourceName}' is inconsistent and cannot be used`);
  if (target.flags & BME_FLAG_IN_USE) fail('merge', name, `Bitmap '${name}' is inconsistent and cannot be used`);
  const runs = await markedRanges(source, src, source.size());
  await img.beginMetadataChange();
  const w = { file: img.file, clusterSize: img.clusterSize, allocCluster: () => img.refcounts.alloc(1) };
  for (const [off, len] of runs) {
    if (off >= img.size()) break;
    await markDirty(w, target, off, Math.min(len, img.size() - off));
  }
  await img.endMetadataChange();
}

/**
 * After a resize: every bitmap's table gets the size the new disk needs (as
 * QEMU's bitmaps follow the disk). New chunks are clean; on a shrink the data
 * clusters past the end are freed and the bits past the new end cleared.
 */
export async function resizeBitmaps(img: Qcow2Image, newSize: number): Promise<void> {
  const list = img.bitmaps?.bitmaps;
  if (!list?.length) return;
  const cs = img.clusterSize;
  await img.beginMetadataChange();
  const out: Qcow2Bitmap[] = [];
  const oldTables: Array<[number, number]> = [];
  for (const b of list) {
    const g = 2 ** b.granularityBits;
    const bits = Math.ceil(newSize / g);
    const size = Math.ceil(bits / (cs * 8));
    const old = b.tableSize ? await img.file.read(b.tableOffset, b.tableSize * 8) : Buffer.alloc(0);
    const table = Buffer.alloc(size * 8);
    old.copy(table, 0, 0, Math.min(old.length, table.length));
    for (let j = size; j < b.tableSize; j++) {
      const data = Number(old.readBigUInt64BE(j * 8) & OFFSET_MASK);
      if (data) await img.refcounts.addRange(data, 1, -1);
    }
    // the last kept cluster: bits past the new end are cleared
    if (size && bits % (cs * 8)) {
      const j = size - 1;
      const e = table.readBigUInt64BE(j * 8);
      const data = Number(e & OFFSET_MASK);
      const keep = bits - j * cs * 8;
      if (data || e & 1n) {
        const block = data ? await img.file.read(data, cs) : Buffer.alloc(cs, 0xff);
        for (let k = keep; k < cs * 8; k++) block[k >> 3] &= ~(1 << (k & 7));
        const at = data || (await img.refcounts.alloc(1));
        await img.file.write(at, block);
        table.writeBigUInt64BE(BigInt(at), j * 8);
      }
    }
    if (b.tableSize) oldTables.push([b.tableOffset, Math.ceil((b.tableSize * 8) / cs)]);
    let tableOffset = 0;
    if (size) {
      const n = Math.ceil((size * 8) / cs);
      tableOffset = await img.refcounts.alloc(n);
      const full = Buffer.alloc(n * cs);
      table.copy(full);
      await img.file.write(tableOffset, full);
    }
    out.push({ ...b, tableOffset, tableSize: size });
  }
  await writeDirectory(img, out);
  for (const [off, n] of oldTables) await img.refcounts.addRange(off, n, -1);
  await img.endMetadataChange();
}

/** convert --bitmaps: one source bitmap recreated in the target with its granularity, state and marks. */
export async function copyBitmap(target: Qcow2Image, source: Qcow2Image, b: Qcow2Bitmap): Promise<void> {
  await bitmapOperation(target, b.name, { op: 'add', granularity: 2 ** b.granularityBits, disabled: !(b.flags & BME_FLAG_AUTO) });
  await mergeBitmap(target, b.name, source, b.name);
}
