/**
 * iSCSI PDUs as RFC 7143 lays them out: a 48-byte Basic Header Segment, any
 * Additional Header Segments, an optional header digest, the data segment
 * padded to a multiple of four bytes, an optional data digest. This module
 * builds and parses BHSs, the key=value text of login and text PDUs, and the
 * CRC32C both digests use. It knows nothing of sessions.
 */

/** Opcodes the initiator sends. */
export const OP = {
  NOP_OUT: 0x00,
  SCSI_CMD: 0x01,
  TASK_MGMT: 0x02,
  LOGIN_REQ: 0x03,
  TEXT_REQ: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQ: 0x06,
  // ... and those the target sends
  NOP_IN: 0x20,
  SCSI_RSP: 0x21,
  TASK_MGMT_RSP: 0x22,
  LOGIN_RSP: 0x23,
  TEXT_RSP: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RSP: 0x26,
  R2T: 0x31,
  ASYNC: 0x32,
  REJECT: 0x3f,
} as const;

export const OPCODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));

export const BHS_LEN = 48;
/** the Initiator Task Tag / Target Transfer Tag that means "none" */
export const NO_TAG = 0xffffffff;
/** immediate delivery bit of byte 0 */
export const IMMEDIATE = 0x40;
/** Final bit of byte 1 */
export const FINAL = 0x80;

/** Login stages (CSG / NSG) */
export const STAGE = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;

/** SCSI Command byte 1 */
export const CMD_READ = 0x40;
export const CMD_WRITE = 0x20;
export const ATTR_SIMPLE = 0x01;

/** Data-In byte 1 */
export const DATA_IN_STATUS = 0x01;
export const DATA_IN_UNDERFLOW = 0x02;
export const DATA_IN_OVERFLOW = 0x04;

/** What the iSCSI login status class/detail pairs mean (RFC 7143 11.13.5), as libiscsi words them. */
export function loginStatusText(cls: number, detail: number): string {
  const code = (cls << 8) | detail;
  const known: Record<number, string> = {
    0x0101: 'Target moved temporarily',
    0x0102: 'Target moved permanently',
    0x0200: 'Initiator error',
    0x0201: 'Authentication failure',
    0x0202: 'Authorization failure',
    0x0203: 'Target not found',
    0x0204: 'Target removed',
    0x0205: 'Unsupported version',
    0x0206: 'Too many connections',
    0x0207: 'Missing parameter',
    0x0208: 'Can not include in session',
    0x0209: 'Session type not supported',
    0x020a: 'Session does not exist',
    0x020b: 'Invalid request during login',
    0x0300: 'Target error',
    0x0301: 'Service unavailable',
    0x0302: 'Out of resources',
  };
  return known[code] ?? 'Unknown login status';
}

/** A parsed PDU: its BHS fields every opcode shares, and the segments after it. */
export interface Pdu {
  bhs: Buffer;
  opcode: number;
  immediate: boolean;
  flags: number;
  ahs: Buffer;
  data: Buffer;
  itt: number;
  /** the data segment was read straight into the buffer of the command it answers */
  placed?: boolean;
}

export function parseBhs(bhs: Buffer): { opcode: number; immediate: boolean; flags: number; ahsLength: number; dataLength: number; itt: number } {
  return {
    opcode: bhs[0]! & 0x3f,
    immediate: (bhs[0]! & IMMEDIATE) !== 0,
    flags: bhs[1]!,
    ahsLength: bhs[4]! * 4,
    dataLength: (bhs[5]! << 16) | (bhs[6]! << 8) | bhs[7]!,
    itt: bhs.readUInt32BE(16),
  };
}

/** A BHS with opcode, flags and the data segment length filled in; the caller sets the rest. */
export function newBhs(opcode: number, flags: number, dataLength: number, immediate = false): Buffer {
  if (dataLength > 0xffffff) throw new RangeError(`data segment of ${dataLength} bytes does not fit 24 bits`);
  const b = Buffer.alloc(BHS_LEN);
  b[0] = opcode | (immediate ? IMMEDIATE : 0);
  b[1] = flags;
  b[5] = (dataLength >>> 16) & 0xff;
  b[6] = (dataLength >>> 8) & 0xff;
  b[7] = dataLength & 0xff;
  return b;
}

export function pad4(n: number): number {
  return (4 - (n & 3)) & 3;
}

// ------------------------------------------------------------------ CRC32C (Castagnoli), as both digests use it

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(...parts: Buffer[]): number {
  let c = 0xffffffff;
  for (const b of parts) for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The 4 digest bytes as they travel: the CRC's least significant byte first (RFC 7143's examples). */
export function digestBytes(...parts: Buffer[]): Buffer {
  const d = Buffer.alloc(4);
  d.writeUInt32LE(crc32c(...parts), 0);
  return d;
}

// ------------------------------------------------------------------ key=value text

export type TextKeys = Array<[string, string]>;

/** key=value pairs, each ended by a NUL. */
export function encodeKeys(keys: TextKeys): Buffer {
  return Buffer.from(keys.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/** The target's key=value pairs; anything that is not one is malformed. */
export function decodeKeys(data: Buffer, bad: (why: string) => Error): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of data.toString('latin1').split('\0')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw bad(`login text "${printable(item)}" is not key=value`);
    const key = item.slice(0, eq);
    if (key.length > 63) throw bad(`login key "${printable(key.slice(0, 64))}..." is longer than 63 characters`);
    out.set(key, item.slice(eq + 1));
  }
  return out;
}

export function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** 32-bit serial number arithmetic (RFC 1982), as CmdSN windows use it: a <= b. */
export function snLessOrEqual(a: number, b: number): boolean {
  return a === b || ((b - a) >>> 0) < 0x80000000;
}
