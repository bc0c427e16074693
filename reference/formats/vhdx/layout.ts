/**
 * VHDX on-disk layout (Microsoft's VHDX Format Specification 1.0), as QEMU 7.2
 * writes it. Every integer is little endian; GUIDs are Microsoft GUIDs (first
 * three groups little endian).
 *
 *   0        file identifier: "vhdxfile" + creator (UTF-16)        64 KiB
 *   64 KiB   header 1 ("head", CRC-32C over 4 KiB)                 64 KiB
 *   128 KiB  header 2                                              64 KiB
 *   192 KiB  region table 1 ("regi", CRC-32C over 64 KiB)          64 KiB
 *   256 KiB  region table 2 (a copy)                               64 KiB
 *   1 MiB    the log (log_offset, log_length from the header)
 *   ...      the BAT region, the metadata region, then payload blocks (1 MiB aligned)
 *
 * Header (at 64 KiB and 128 KiB): signature u32 "head", checksum u32,
 * sequence_number u64, file_write_guid, data_write_guid, log_guid (16 each),
 * log_version u16 (0), version u16 (1), log_length u32, log_offset u64: 80 bytes.
 * The current header is the valid one with the higher sequence number.
 */
import { randomBytes } from 'node:crypto';

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB_ = 1024 * MiB;
export const HEADER_SECTION_END = MiB;
export const HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
export const HEADER_CRC_SIZE = 4 * KiB;
export const HEADER_STRUCT_SIZE = 80;
export const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const;
export const REGION_TABLE_SIZE = 64 * KiB;
export const METADATA_TABLE_SIZE = 64 * KiB;
export const LOG_SECTOR = 4 * KiB;
export const BLOCK_SIZE_MIN = MiB;
export const BLOCK_SIZE_MAX = 256 * MiB;
export const MAX_IMAGE_SIZE = 64 * 1024 * 1024 * MiB;
export const MAX_SECTORS_PER_BLOCK = 1 << 23;
/** The creator string QEMU writes: "QEMU v" + its version (Debian's 7.2). */
export const CREATOR = 'QEMU v7.2.22';

export const SIG = {
  file: 'vhdxfile',
  header: 'head',
  region: 'regi',
  metadata: 'metadata',
  logEntry: 'loge',
  desc: 'desc',
  zero: 'zero',
  data: 'data',
} as const;

/** Payload block states (low 3 bits of a BAT entry). */
export const STATE = {
  NOT_PRESENT: 0,
  UNDEFINED: 1,
  ZERO: 2,
  UNMAPPED: 3,
  UNMAPPED_V095: 5,
  FULLY_PRESENT: 6,
  PARTIALLY_PRESENT: 7,
} as const;

/** A GUID in text form ("2dc27766-f623-4200-9d64-115e9bfd4a08") to its 16 on-disk bytes. */
export function guidBytes(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  b.writeUInt32LE(b.readUInt32BE(0), 0);
  b.writeUInt16LE(b.readUInt16BE(4), 4);
  b.writeUInt16LE(b.readUInt16BE(6), 6);
  return b;
}

export const GUID = {
  bat: guidBytes('2dc27766-f623-4200-9d64-115e9bfd4a08'),
  metadata: guidBytes('8b7ca206-4790-4b9a-b8fe-575f050f886e'),
  fileParameters: guidBytes('caa16737-fa36-4d43-b3b6-33f0aa44e76b'),
  virtualDiskSize: guidBytes('2fa54224-cd1b-4876-b211-5dbed83bf4b8'),
  page83: guidBytes('beca12ab-b2e6-4523-93ef-c309e000c746'),
  logicalSectorSize: guidBytes('8141bf1d-a96f-4709-ba47-f233a8faab5f'),
  physicalSectorSize: guidBytes('cda348c7-445d-4471-9cc9-e9885251c556'),
  parentLocator: guidBytes('a8d35f2d-b30b-454d-abf7-d3d84834ab0c'),
} as const;

export const ZERO_GUID = Buffer.alloc(16);

/** A random GUID as QEMU makes one (a version 4 UUID's bytes, copied as they are). */
export function newGuid(): Buffer {
  const u = randomBytes(16);
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}

export interface Header {
  sequence: bigint;
  fileWriteGuid: Buffer;
  dataWriteGuid: Buffer;
  logGuid: Buffer;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: number;
}

export const HEADER_FIELDS = { signature: 0, checksum: 4, sequence: 8, fileWriteGuid: 16, dataWriteGuid: 32, logGuid: 48, logVersion: 64, version: 66, logLength: 68, logOffset: 72 } as const;

export function encodeHeader(h: Header, into: Buffer): void {
  into.write(SIG.header, 0, 'latin1');
  into.writeUInt32LE(0, 4);
  into.writeBigUInt64LE(h.sequence & 0xffffffffffffffffn, 8);
  h.fileWriteGuid.copy(into, 16);
  h.dataWriteGuid.copy(into, 32);
  h.logGuid.copy(into, 48);
  into.writeUInt16LE(h.logVersion, 64);
  into.writeUInt16LE(h.version, 66);
  into.writeUInt32LE(h.logLength, 68);
  into.writeBigUInt64LE(BigInt(h.logOffset), 72);
}

export function decodeHeader(b: Buffer): Header {
  return {
    sequence: b.readBigUInt64LE(8),
    fileWriteGuid: Buffer.from(b.subarray(16, 32)),
    dataWriteGuid: Buffer.from(b.subarray(32, 48)),
    logGuid: Buffer.from(b.subarray(48, 64)),
    logVersion: b.readUInt16LE(64),
    version: b.readUInt16LE(66),
    logLength: b.readUInt32LE(68),
    logOffset: Number(b.readBigUInt64LE(72)),
  };
}

/** Region table: header 16 bytes (signature, checksum, entry_count, reserved), entries of 32. */
export const REGION_ENTRY_SIZE = 32;
export const REGION_REQUIRED = 1;

/** Metadata table: 32-byte header ("metadata", reserved u16, entry_count u16), entries of 32. */
export const METADATA_ENTRY_SIZE = 32;
export const METADATA_MAX_ENTRIES = 2047;
export const META_IS_VIRTUAL_DISK = 2;
export const META_IS_REQUIRED = 4;
export const PARAMS_LEAVE_BLOCKS_ALLOCATED = 1;
export const PARAMS_HAS_PARENT = 2;

/** Log entry header (64 bytes) and descriptor (32 bytes) field offsets. */
export const LOG_HDR = { signature: 0, checksum: 4, entryLength: 8, tail: 12, sequence: 16, descriptorCount: 24, reserved: 28, logGuid: 32, flushedFileOffset: 48, lastFileOffset: 56 } as const;
export const LOG_HDR_SIZE = 64;
export const LOG_DESC_SIZE = 32;
export const LOG_DESC = { signature: 0, trailing: 4, leading: 8, zeroLength: 8, fileOffset: 16, sequence: 24 } as const;

/** Sectors holding the entry header and `count` descriptors (126 in the first, 128 in each next). */
export function descriptorSectors(count: number): number {
  return Math.ceil((count + 2) / 128);
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}
