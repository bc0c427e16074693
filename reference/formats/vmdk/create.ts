/**
 * vmdk creation, byte for byte as qemu-img 7.2 writes it (vmdk_co_do_create
 * and vmdk_init_extent); only the CID differs, being random.
 *
 * A sparse extent of S bytes: header in sector 0, the descriptor area
 * (sectors 1..20), the redundant grain directory at sector 21 followed by its
 * grain tables, the grain directory followed by its grain tables, and grains
 * from the next 64 KiB boundary (128-sector grains, 512 entries per table).
 * The file ends where the grains begin; tables are holes of zeroes.
 *
 * File names as qemu-img gives them: NAME.vmdk holds the descriptor (and, for
 * monolithicSparse and streamOptimized, the one extent); monolithicFlat adds
 * NAME-flat.vmdk; the twoGbMaxExtent subformats add NAME-s001.vmdk /
 * NAME-f001.vmdk, ... of at most 2 GiB each.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockError } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import { FileNode } from '../../protocols/file.js';
import type { VmdkCreateOptions } from '../../types/create-vmdk.js';
import { buildDescriptor, descriptorText, parseCids, DESC_SIZE } from './descriptor.js';
import { FLAG_COMPRESS, FLAG_MARKER, FLAG_NL_DETECT, FLAG_RGD, FLAG_ZERO_GRAIN, HEADER, KDMV, SECTOR } from './sparse.js';
import { newCid } from './image.js';

const GRANULARITY = 128;
const GTES = 512;
const SPLIT_SIZE = 0x80000000;

/** Write a sparse extent's header and grain directories for `size` bytes into `file`. */
export async function initSparseExtent(file: ProtocolNode, size: number, compress: boolean, zeroedGrain: boolean): Promise<void> {
  const capacity = Math.floor(size / SECTOR);
  const grains = Math.ceil(capacity / GRANULARITY);
  const gtSize = Math.ceil((GTES * 4) / SECTOR);
  const gtCount = Math.ceil(grains / GTES);
  const gdSectors = Math.ceil((gtCount * 4) / SECTOR);
  const descOffset = 1;
  const descSize = 20;
  const rgdOffset = descOffset + descSize;
  const gdOffset = rgdOffset + gdSectors + gtSize * gtCount;
  const grainOffset = Math.ceil((gdOffset + gdSectors + gtSize * gtCount) / GRANULARITY) * GRANULARITY;

  const h = Buffer.alloc(SECTOR);
  h.writeUInt32BE(KDMV, HEADER.magic);
  h.writeUInt32LE(compress ? 3 : zeroedGrain ? 2 : 1, HEADER.version);
  h.writeUInt32LE(FLAG_RGD | FLAG_NL_DETECT | (compress ? FLAG_COMPRESS | FLAG_MARKER : 0) | (zeroedGrain ? FLAG_ZERO_GRAIN : 0), HEADER.flags);
  h.writeBigUInt64LE(BigInt(capacity), HEADER.capacity);
  h.writeBigUInt64LE(BigInt(GRANULARITY), HEADER.granularity);
  h.writeBigUInt64LE(BigInt(descOffset), HEADER.descOffset);
  h.writeBigUInt64LE(BigInt(descSize), HEADER.descSize);
  h.writeUInt32LE(GTES, HEADER.numGtesPerGt);
  h.writeBigUInt64LE(BigInt(rgdOffset), HEADER.rgdOffset);
  h.writeBigUInt64LE(BigInt(gdOffset), HEADER.gdOffset);
  h.writeBigUInt64LE(BigInt(grainOffset), HEADER.grainOffset);
  Buffer.from([0x0a, 0x20, 0x0d, 0x0a]).copy(h, HEADER.checkBytes);
  h.writeUInt16LE(compress ? 1 : 0, HEADER.compressAlgorithm);
  // QEMU writes the 4-byte magic and the 79-byte header, nothing more of the sector.
  await file.write(0, h.subarray(0, 4 + 79));
  await file.truncate(grainOffset * SECTOR, 'off');
  const gd = Buffer.alloc(gdSectors * SECTOR);
  for (const [at, firstGt] of [[rgdOffset, rgdOffset + gdSectors], [gdOffset, gdOffset + gdSectors]]) {
    for (let i = 0; i < gtCount; i++) gd.writeUInt32LE(firstGt + i * gtSize, i * 4);
    await file.write(at * SECTOR, gd);
  }
}

/** qemu's filename_decompose: directory (with its slash), name without the last extension, the extension. */
function decompose(filename: string): { dir: string; prefix: string; postfix: string } {
  let cut = filename.lastIndexOf('/');
  if (cut < 0) cut = filename.lastIndexOf('\\');
  if (cut < 0) cut = filename.lastIndexOf(':');
  const dir = cut < 0 ? '' : filename.slice(0, cut + 1);
  const base = filename.slice(cut + 1);
  const dot = base.lastIndexOf('.');
  return dot < 0 ? { dir, prefix: base, postfix: '' } : { dir, prefix: base.slice(0, dot), postfix: base.slice(dot) };
}

/** The CID of an existing vmdk image (the new overlay's parentCID). */
async function baseCid(filename: string): Promise<number> {
  let f: FileNode;
  try {
    f = FileNode.open(filename, { readOnly: true });
  } catch (e) {
    throw new BlockError('backing', `backing_file: Could not open '${filename}': ${(e as Error).message}`, { option: 'backing_file', cause: e });
  }
  try {
    const head = await f.read(0, Math.min(f.size(), 4));
    const embedded = head.length === 4 && head.readUInt32BE(0) === KDMV;
    const text = descriptorText(await f.read(embedded ? 0x200 : 0, Math.min(DESC_SIZE, Math.max(0, f.size() - (embedded ? 0x200 : 0)))));
    return parseCids(text).cid;
  } catch (e) {
    throw new BlockError('backing', `backing_file: Failed to read parent CID of '${filename}' (backing_file must be a vmdk image): ${(e as Error).message}`, { option: 'backing_file', cause: e });
  } finally {
    await f.close();
  }
}

export async function createVmdk(file: ProtocolNode, o: VmdkCreateOptions, target: string): Promise<void> {
  const size = o.size ?? 0;
  const subformat = o.subformat ?? 'monolithicSparse';
  const adapterType = o.adapter_type ?? 'ide';
  let hwVersion = o.hwversion === undefined || o.hwversion === 'undefined' ? undefined : o.hwversion;
  if (o.compat6) {
    if (hwVersion !== undefined) throw new BlockError('option-conflict', 'compat6: compat6 cannot be enabled with hwversion set', { option: 'compat6' });
    hwVersion = '6';
  }
  hwVersion ??= '4';
  const toolsVersion = o.toolsversion ?? '2147483647';
  const split = subformat === 'twoGbMaxExtentFlat' || subformat === 'twoGbMaxExtentSparse';
  const flat = subformat === 'monolithicFlat' || subformat === 'twoGbMaxExtentFlat';
  const compress = subformat === 'streamOptimized';
  const zeroed = o.zeroed_grain === true;
  if (flat && o.backing_file) throw new BlockError('unsupported', `backing_file: Flat image can't have backing file (subformat=${subformat})`, { option: 'backing_file' });
  if (flat && zeroed) throw new BlockError('option-conflict', `zeroed_grain: Flat image can't enable zeroed grain (subformat=${subformat})`, { option: 'zeroed_grain' });

  let parentCid = 0xffffffff;
  if (o.backing_file) {
    const full = path.isAbsolute(o.backing_file) ? o.backing_file : path.join(path.dirname(target), o.backing_file);
    parentCid = await baseCid(full);
  }

  const { dir, prefix, postfix } = decompose(target);
  const lines: string[] = [];
  const line = (bytes: number, name: string) => lines.push(flat
    ? `RW ${Math.ceil(bytes / SECTOR)} FLAT "${path.basename(name)}" 0\n`
    : `RW ${Math.ceil(bytes / SECTOR)} SPARSE "${path.basename(name)}"\n`);
  const made: string[] = [];
  try {
    if (!split && !flat) {
      await initSparseExtent(file, size, compress, zeroed);
      line(size, target);
    } else {
      const extentSize = split ? SPLIT_SIZE : size;
      let done = 0;
      for (let idx = 1; done < size; idx++) {
        const cur = Math.min(size - done, extentSize);
        const name = split ? `${dir}${prefix}-${flat ? 'f' : 's'}${String(idx).padStart(3, '0')}${postfix}` : `${dir}${prefix}-flat${postfix}`;
        const ext = FileNode.open(name, { create: true });
        made.push(name);
        try {
          await ext.truncate(0, 'off');
          if (flat) await ext.truncate(cur, 'off');
          else await initSparseExtent(ext, cur, compress, zeroed);
          await ext.flush();
        } finally {
          await ext.close();
        }
        line(cur, name);
        done += cur;
      }
    }
    const desc = buildDescriptor({
      cid: newCid(), parentCid, createType: subformat, parentFileNameHint: o.backing_file,
      extentLines: lines, hwVersion, size, adapterType, toolsVersion,
    });
    const bytes = Buffer.from(desc, 'latin1');
    if (!split && !flat) {
      await file.write(0x200, bytes);
    } else {
      await file.truncate(0, 'off');
      await file.write(0, bytes);
      await file.truncate(bytes.length, 'off');
    }
  } catch (e) {
    for (const m of made) fs.rmSync(m, { force: true });
    throw e;
  }
}
