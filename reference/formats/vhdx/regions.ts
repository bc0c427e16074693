/**
 * The region table (at 192 KiB, CRC-32C over 64 KiB): where the BAT and the
 * metadata live. QEMU refuses a table with more than 2047 entries, regions
 * that overlap each other or the log, a BAT or metadata region given twice,
 * an unknown region marked required, and a table without both regions.
 */
import { BlockError, malformed } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import { crc32cWithHole } from './crc32c.js';
import { GUID, HEADER_SECTION_END, MiB, REGION_ENTRY_SIZE, REGION_REQUIRED, REGION_TABLE_OFFSETS, REGION_TABLE_SIZE, SIG } from './layout.js';

export interface Region { offset: number; length: number }

/** File ranges that must not overlap (the log, the regions); QEMU's region list. */
export class RegionMap {
  private readonly list: Array<Region & { what: string }> = [];

  overlapping(offset: number, length: number): (Region & { what: string }) | undefined {
    const end = offset + length;
    return this.list.find((r) => !(offset >= r.offset + r.length || end <= r.offset));
  }

  add(offset: number, length: number, what: string): void {
    this.list.push({ offset, length, what });
  }
}

export interface RegionTable { bat: Region; metadata: Region }

export async function readRegionTable(file: ProtocolNode, regions: RegionMap): Promise<RegionTable> {
  const at = REGION_TABLE_OFFSETS[0];
  const t = Buffer.alloc(REGION_TABLE_SIZE);
  (await file.read(at, Math.min(REGION_TABLE_SIZE, Math.max(0, file.size() - at)))).copy(t);
  if (crc32cWithHole(t, 4) !== t.readUInt32LE(4)) throw malformed('region_table', `the region table's CRC-32C is wrong (stored 0x${t.readUInt32LE(4).toString(16)})`, at + 4);
  if (t.toString('latin1', 0, 4) !== SIG.region) throw malformed('region_table', 'the region table has no "regi" signature', at);
  const count = t.readUInt32LE(8);
  if (count > 2047) throw malformed('region_table', `entry_count ${count} is more than 2047`, at + 8);
  let bat: Region | undefined;
  let metadata: Region | undefined;
  const fileSize = file.size();
  for (let i = 0; i < count; i++) {
    const e = 16 + i * REGION_ENTRY_SIZE;
    const guid = t.subarray(e, e + 16);
    const offset = Number(t.readBigUInt64LE(e + 16));
    const length = t.readUInt32LE(e + 24);
    const bits = t.readUInt32LE(e + 28);
    const where = at + e;
    const clash = regions.overlapping(offset, length);
    if (clash) throw malformed('region_table', `region ${i} (${offset}..${offset + length}) overlaps the ${clash.what} (${clash.offset}..${clash.offset + clash.length})`, where);
    const isBat = guid.equals(GUID.bat);
    const isMeta = guid.equals(GUID.metadata);
    regions.add(offset, length, isBat ? 'BAT region' : isMeta ? 'metadata region' : `region ${i}`);
    if (isBat || isMeta) {
      if ((isBat && bat) || (isMeta && metadata)) throw malformed('region_table', `the ${isBat ? 'BAT' : 'metadata'} region is listed twice (entry ${i})`, where);
      // QEMU reads whatever is there; the reference insists the region is inside the file, past the header section.
      if (offset < HEADER_SECTION_END || offset % MiB) throw malformed('region_table', `the ${isBat ? 'BAT' : 'metadata'} region's offset ${offset} is not a multiple of 1 MiB past the 1 MiB header section`, where + 16);
      if (offset + length > fileSize) throw malformed('region_table', `the ${isBat ? 'BAT' : 'metadata'} region (${offset}..${offset + length}) ends past the end of the file (${fileSize})`, where + 16);
      if (isBat) bat = { offset, length };
      else metadata = { offset, length };
      continue;
    }
    if (bits & REGION_REQUIRED) throw new BlockError('unsupported', `region_table: region ${i} is required but unknown to QEMU (GUID ${guid.toString('hex')})`, { field: 'region_table', offset: where });
  }
  if (!bat || !metadata) throw malformed('region_table', `the region table lacks the ${!bat ? 'BAT' : 'metadata'} region`, at);
  return { bat, metadata };
}
