/**
 * The metadata region: a 64 KiB table ("metadata", entry_count, then 32-byte
 * entries: item GUID, offset and length relative to the region, flags) and
 * the items. QEMU needs all five of file parameters, virtual disk size,
 * page 83 data, logical and physical sector size; it refuses differencing
 * images (has_parent) and logical sectors other than 512 bytes.
 */
import { BlockError, malformed } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import type { Region } from './regions.js';
import {
  BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, GUID, KiB, MAX_IMAGE_SIZE, META_IS_REQUIRED, META_IS_VIRTUAL_DISK, METADATA_ENTRY_SIZE,
  METADATA_TABLE_SIZE, PARAMS_HAS_PARENT, PARAMS_LEAVE_BLOCKS_ALLOCATED, SIG, newGuid,
} from './layout.js';

export interface Metadata {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
}

const ITEMS = [
  ['fileParameters', GUID.fileParameters, 8],
  ['virtualDiskSize', GUID.virtualDiskSize, 8],
  ['page83', GUID.page83, 16],
  ['logicalSectorSize', GUID.logicalSectorSize, 4],
  ['physicalSectorSize', GUID.physicalSectorSize, 4],
] as const;

export async function readMetadata(file: ProtocolNode, region: Region): Promise<Metadata> {
  const t = Buffer.alloc(METADATA_TABLE_SIZE);
  (await file.read(region.offset, Math.min(METADATA_TABLE_SIZE, region.length))).copy(t);
  if (t.toString('latin1', 0, 8) !== SIG.metadata) throw malformed('metadata', 'the metadata table has no "metadata" signature', region.offset);
  const count = t.readUInt16LE(10);
  if (count * METADATA_ENTRY_SIZE > METADATA_TABLE_SIZE - 32) throw malformed('metadata', `entry_count ${count} does not fit in the 64 KiB table`, region.offset + 10);
  const found = new Map<string, { offset: number; length: number }>();
  let hasParentLocator = false;
  for (let i = 0; i < count; i++) {
    const e = 32 + i * METADATA_ENTRY_SIZE;
    const guid = t.subarray(e, e + 16);
    const offset = t.readUInt32LE(e + 16);
    const length = t.readUInt32LE(e + 20);
    const bits = t.readUInt32LE(e + 24);
    const where = region.offset + e;
    const item = ITEMS.find(([, g]) => guid.equals(g));
    if (item) {
      const [name, , size] = item;
      if (found.has(name)) throw malformed('metadata', `item ${name} is listed twice`, where);
      // QEMU reads an item wherever its offset points; the reference keeps it inside the region.
      if (offset < METADATA_TABLE_SIZE || offset + size > region.length || length < size) {
        throw malformed('metadata', `item ${name} (${length} bytes at ${offset}) is not inside the metadata region (64 KiB..${region.length})`, where + 16);
      }
      found.set(name, { offset, length });
      continue;
    }
    if (guid.equals(GUID.parentLocator)) {
      if (hasParentLocator) throw malformed('metadata', 'the parent locator is listed twice', where);
      hasParentLocator = true;
      continue;
    }
    if (bits & META_IS_REQUIRED) throw new BlockError('unsupported', `metadata: item ${i} is required but unknown to QEMU (GUID ${guid.toString('hex')})`, { field: 'metadata', offset: where });
  }
  for (const [name] of ITEMS) if (!found.has(name)) throw new BlockError('unsupported', `metadata: the required item ${name} is missing`, { field: 'metadata', offset: region.offset });
  const item = async (name: string, size: number) => file.read(region.offset + found.get(name)!.offset, size);
  const params = await item('fileParameters', 8);
  const blockSize = params.readUInt32LE(0);
  const bits = params.readUInt32LE(4);
  if (bits & PARAMS_HAS_PARENT) {
    throw new BlockError(hasParentLocator ? 'unsupported' : 'malformed', hasParentLocator ? 'metadata: differencing VHDX images (has_parent) are not supported' : 'metadata: has_parent is set but there is no parent locator', { field: 'file_parameters' });
  }
  const virtualSize = (await item('virtualDiskSize', 8)).readBigUInt64LE(0);
  const logicalSectorSize = (await item('logicalSectorSize', 4)).readUInt32LE(0);
  const physicalSectorSize = (await item('physicalSectorSize', 4)).readUInt32LE(0);
  if (blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX || (blockSize & (blockSize - 1)) !== 0) {
    throw malformed('block_size', `block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`, region.offset + found.get('fileParameters')!.offset);
  }
  if (logicalSectorSize !== 512) throw new BlockError('unsupported', `logical_sector_size: ${logicalSectorSize} (only 512 is supported)`, { field: 'logical_sector_size' });
  // QEMU creates at most 64 TiB; a bigger size only makes a BAT the file cannot hold.
  if (virtualSize > BigInt(MAX_IMAGE_SIZE) || virtualSize % 512n) {
    throw malformed('virtual_disk_size', `virtual disk size ${virtualSize} is not a multiple of 512 up to 64 TiB`, region.offset + found.get('virtualDiskSize')!.offset);
  }
  return { blockSize, leaveBlocksAllocated: (bits & PARAMS_LEAVE_BLOCKS_ALLOCATED) !== 0, virtualSize: Number(virtualSize), logicalSectorSize, physicalSectorSize };
}

/** The table and items qemu-img writes (the page 83 GUID is random). */
export function buildMetadata(m: Metadata): { table: Buffer; items: Buffer } {
  const items = Buffer.alloc(8 + 8 + 16 + 4 + 4);
  items.writeUInt32LE(m.blockSize, 0);
  items.writeUInt32LE(m.leaveBlocksAllocated ? PARAMS_LEAVE_BLOCKS_ALLOCATED : 0, 4);
  items.writeBigUInt64LE(BigInt(m.virtualSize), 8);
  newGuid().copy(items, 16);
  items.writeUInt32LE(m.logicalSectorSize, 32);
  items.writeUInt32LE(m.physicalSectorSize, 36);
  const table = Buffer.alloc(METADATA_TABLE_SIZE);
  table.write(SIG.metadata, 0, 'latin1');
  table.writeUInt16LE(ITEMS.length, 10);
  let offset = 64 * KiB;
  ITEMS.forEach(([name, guid, size], i) => {
    const e = 32 + i * METADATA_ENTRY_SIZE;
    guid.copy(table, e);
    table.writeUInt32LE(offset, e + 16);
    table.writeUInt32LE(size, e + 20);
    table.writeUInt32LE(name === 'fileParameters' ? META_IS_REQUIRED : META_IS_REQUIRED | META_IS_VIRTUAL_DISK, e + 24);
    offset += size;
  });
  return { table, items };
}
