/**
 * The SCSI side of the initiator: command descriptor blocks for what QEMU's
 * iSCSI driver sends (TEST UNIT READY, INQUIRY and its VPD pages, READ
 * CAPACITY(10)/(16), READ/WRITE(10)/(16), SYNCHRONIZE CACHE(10), UNMAP, GET LBA
 * STATUS), parsers for their answers, and sense data in words a user can read
 * (the names libiscsi prints: "SENSE KEY:ILLEGAL_REQUEST(5) ASCQ:...").
 */

export const STATUS = { GOOD: 0x00, CHECK_CONDITION: 0x02, BUSY: 0x08, RESERVATION_CONFLICT: 0x18, TASK_SET_FULL: 0x28 } as const;

export const DEVICE_TYPE = { DISK: 0x00, ROM: 0x05 } as const;

export const SENSE_KEY = { NOT_READY: 0x2, ILLEGAL_REQUEST: 0x5, UNIT_ATTENTION: 0x6, DATA_PROTECTION: 0x7 } as const;

const SENSE_KEY_NAMES = [
  'NO_SENSE', 'RECOVERED_ERROR', 'NOT_READY', 'MEDIUM_ERROR', 'HARDWARE_ERROR', 'ILLEGAL_REQUEST', 'UNIT_ATTENTION',
  'DATA_PROTECTION', 'BLANK_CHECK', 'VENDOR_SPECIFIC', 'COPY_ABORTED', 'ABORTED_COMMAND', 'OBSOLETE', 'VOLUME_OVERFLOW',
  'MISCOMPARE', 'RESERVED',
];

const ASCQ_NAMES: Record<number, string> = {
  0x0000: 'NO_ADDITIONAL_SENSE_INFORMATION',
  0x2000: 'INVALID_OPERATION_CODE',
  0x2100: 'LBA_OUT_OF_RANGE',
  0x2400: 'INVALID_FIELD_IN_CDB',
  0x2500: 'LOGICAL_UNIT_NOT_SUPPORTED',
  0x2600: 'INVALID_FIELD_IN_PARAMETER_LIST',
  0x2700: 'WRITE_PROTECTED',
  0x2900: 'BUS_RESET',
  0x2a09: 'CAPACITY_DATA_HAS_CHANGED',
  0x3a00: 'MEDIUM_NOT_PRESENT',
};

export interface Sense {
  key: number;
  asc: number;
  ascq: number;
}

/** Fixed (0x70/0x71) or descriptor (0x72/0x73) sense data; null when it is neither. */
export function parseSense(b: Buffer): Sense | null {
  if (b.length < 4) return null;
  const code = b[0]! & 0x7f;
  if ((code === 0x70 || code === 0x71) && b.length >= 14) return { key: b[2]! & 0x0f, asc: b[12]!, ascq: b[13]! };
  if (code === 0x72 || code === 0x73) return { key: b[1]! & 0x0f, asc: b[2]!, ascq: b[3]! };
  return null;
}

export function senseText(s: Sense): string {
  const q = (s.asc << 8) | s.ascq;
  return `SENSE KEY:${SENSE_KEY_NAMES[s.key]}(${s.key}) ASCQ:${ASCQ_NAMES[q] ?? '(null)'}(0x${q.toString(16).padStart(4, '0')})`;
}

export function statusText(status: number): string {
  const name = Object.entries(STATUS).find(([, v]) => v === status)?.[0];
  return `SCSI status ${name ?? `0x${status.toString(16)}`}`;
}

function cdb(len: number, op: number): Buffer {
  const c = Buffer.alloc(len);
  c[0] = op;
  return c;
}

export const testUnitReady = (): Buffer => cdb(6, 0x00);

export function inquiry(page: number | null, alloc: number): Buffer {
  const c = cdb(6, 0x12);
  if (page !== null) {
    c[1] = 0x01; // EVPD
    c[2] = page;
  }
  c.writeUInt16BE(alloc, 3);
  return c;
}

export function readCapacity10(): Buffer {
  return cdb(10, 0x25);
}

export function readCapacity16(alloc = 32): Buffer {
  const c = cdb(16, 0x9e);
  c[1] = 0x10; // SERVICE ACTION IN(16): READ CAPACITY(16)
  c.writeUInt32BE(alloc, 10);
  return c;
}

export function getLbaStatus(lba: number, alloc: number): Buffer {
  const c = cdb(16, 0x9e);
  c[1] = 0x12;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(alloc, 10);
  return c;
}

/** READ/WRITE(16) for disks, (10) for the MMC devices that lack the 16-byte forms. */
export function readWrite(write: boolean, lba: number, blocks: number, sixteen: boolean): Buffer {
  if (sixteen) {
    const c = cdb(16, write ? 0x8a : 0x88);
    c.writeBigUInt64BE(BigInt(lba), 2);
    c.writeUInt32BE(blocks, 10);
    return c;
  }
  const c = cdb(10, write ? 0x2a : 0x28);
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

/** SYNCHRONIZE CACHE(10) of the whole medium (LBA 0, 0 blocks), as QEMU sends it. */
export function synchronizeCache10(): Buffer {
  return cdb(10, 0x35);
}

export function unmap(paramLength: number): Buffer {
  const c = cdb(10, 0x42);
  c.writeUInt16BE(paramLength, 7);
  return c;
}

export function unmapParameters(ranges: Array<{ lba: number; blocks: number }>): Buffer {
  const p = Buffer.alloc(8 + 16 * ranges.length);
  p.writeUInt16BE(6 + 16 * ranges.length, 0);
  p.writeUInt16BE(16 * ranges.length, 2);
  ranges.forEach((r, i) => {
    p.writeBigUInt64BE(BigInt(r.lba), 8 + 16 * i);
    p.writeUInt32BE(r.blocks, 16 + 16 * i);
  });
  return p;
}

export interface StandardInquiry {
  qualifier: number;
  type: number;
  removable: boolean;
  vendor: string;
  product: string;
}

export function parseInquiry(b: Buffer): StandardInquiry {
  if (b.length < 1) throw new Error('empty INQUIRY data');
  return {
    qualifier: b[0]! >> 5,
    type: b[0]! & 0x1f,
    removable: b.length > 1 && (b[1]! & 0x80) !== 0,
    vendor: b.length >= 16 ? b.subarray(8, 16).toString('latin1').trim() : '',
    product: b.length >= 32 ? b.subarray(16, 32).toString('latin1').trim() : '',
  };
}

/** VPD page 0x00: the pages the LUN has. */
export function parseSupportedPages(b: Buffer): number[] {
  if (b.length < 4 || b[1] !== 0x00) return [];
  const n = Math.min(b.readUInt16BE(2), b.length - 4);
  return [...b.subarray(4, 4 + n)];
}

export interface BlockLimits {
  /** blocks per READ/WRITE; 0 = no limit */
  maxTransfer: number;
  maxUnmapBlocks: number;
  maxUnmapDescriptors: number;
}

/** VPD page 0xb0 (Block Limits). */
export function parseBlockLimits(b: Buffer): BlockLimits | null {
  if (b.length < 16 || b[1] !== 0xb0) return null;
  return {
    maxTransfer: b.readUInt32BE(8),
    maxUnmapBlocks: b.length >= 28 ? b.readUInt32BE(20) : 0,
    maxUnmapDescriptors: b.length >= 28 ? b.readUInt32BE(24) : 0,
  };
}

export interface Provisioning {
  /** UNMAP is supported */
  lbpu: boolean;
  /** WRITE SAME(16) with UNMAP is supported */
  lbpws: boolean;
  /** unmapped blocks read as zeroes */
  lbprz: boolean;
}

/** VPD page 0xb2 (Logical Block Provisioning). */
export function parseProvisioning(b: Buffer): Provisioning | null {
  if (b.length < 6 || b[1] !== 0xb2) return null;
  return { lbpu: (b[5]! & 0x80) !== 0, lbpws: (b[5]! & 0x40) !== 0, lbprz: (b[5]! & 0x04) !== 0 };
}

export interface Capacity {
  /** the last LBA, so blocks = lastLba + 1 */
  lastLba: number;
  blockSize: number;
  /** logical block provisioning management enabled (thin) */
  lbpme: boolean;
  lbprz: boolean;
}

export function parseCapacity16(b: Buffer): Capacity {
  if (b.length < 32 - 16) throw new Error(`READ CAPACITY(16) returned ${b.length} bytes`);
  const last = b.readBigUInt64BE(0);
  return {
    lastLba: last > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(last),
    blockSize: b.readUInt32BE(8),
    lbpme: (b[14]! & 0x80) !== 0,
    lbprz: (b[14]! & 0x40) !== 0,
  };
}

export function parseCapacity10(b: Buffer): Capacity {
  if (b.length < 8) throw new Error(`READ CAPACITY(10) returned ${b.length} bytes`);
  return { lastLba: b.readUInt32BE(0), blockSize: b.readUInt32BE(4), lbpme: false, lbprz: false };
}

/** GET LBA STATUS: the first descriptor, the one that starts at the LBA asked for. */
export function parseLbaStatus(b: Buffer): { lba: number; blocks: number; mapped: boolean } | null {
  if (b.length < 24) return null;
  const lba = b.readBigUInt64BE(8);
  return { lba: Number(lba), blocks: b.readUInt32BE(16), mapped: (b[20]! & 0x0f) === 0 };
}
