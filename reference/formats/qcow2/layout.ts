/**
 * qcow2 on-disk layout (QEMU docs/interop/qcow2.txt): the header as one table,
 * header extensions, and the bit layouts of table entries. All integers are
 * big-endian.
 */
import { BlockError, malformed } from '../../errors.js';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

type FieldType = 'u32' | 'u64' | 'u8';
type NumericField = Exclude<keyof Qcow2Header, 'featuresHigh'>;
interface Field { name: NumericField; offset: number; type: FieldType; since: 2 | 3 }

/** The header, field by field, in file order. Version 3 adds everything from 72 on. */
export const HEADER_FIELDS: readonly Field[] = [
  { name: 'magic', offset: 0, type: 'u32', since: 2 },
  { name: 'version', offset: 4, type: 'u32', since: 2 },
  { name: 'backingFileOffset', offset: 8, type: 'u64', since: 2 },
  { name: 'backingFileSize', offset: 16, type: 'u32', since: 2 },
  { name: 'clusterBits', offset: 20, type: 'u32', since: 2 },
  { name: 'size', offset: 24, type: 'u64', since: 2 },
  { name: 'cryptMethod', offset: 32, type: 'u32', since: 2 },
  { name: 'l1Size', offset: 36, type: 'u32', since: 2 },
  { name: 'l1TableOffset', offset: 40, type: 'u64', since: 2 },
  { name: 'refcountTableOffset', offset: 48, type: 'u64', since: 2 },
  { name: 'refcountTableClusters', offset: 56, type: 'u32', since: 2 },
  { name: 'nbSnapshots', offset: 60, type: 'u32', since: 2 },
  { name: 'snapshotsOffset', offset: 64, type: 'u64', since: 2 },
  { name: 'incompatibleFeatures', offset: 72, type: 'u64', since: 3 },
  { name: 'compatibleFeatures', offset: 80, type: 'u64', since: 3 },
  { name: 'autoclearFeatures', offset: 88, type: 'u64', since: 3 },
  { name: 'refcountOrder', offset: 96, type: 'u32', since: 3 },
  { name: 'headerLength', offset: 100, type: 'u32', since: 3 },
  { name: 'compressionType', offset: 104, type: 'u8', since: 3 },
];

/** header_length of a version 2 header, and of the version 3 header QEMU 7.2 writes */
export const V2_HEADER_LENGTH = 72;
export const V3_HEADER_LENGTH = 112;

export interface Qcow2Header {
  magic: number;
  version: number;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: number;
  compatibleFeatures: number;
  autoclearFeatures: number;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  /** bits 32..63 of the three feature bitmaps (none defined; an unknown incompatible one refuses the image) */
  featuresHigh?: { incompatible: number; compatible: number; autoclear: number };
}

export const INCOMPAT_DIRTY = 1 << 0;
export const INCOMPAT_CORRUPT = 1 << 1;
export const INCOMPAT_DATA_FILE = 1 << 2;
export const INCOMPAT_COMPRESSION = 1 << 3;
export const INCOMPAT_EXTL2 = 1 << 4;
export const INCOMPAT_KNOWN = 0x1f;
export const COMPAT_LAZY_REFCOUNTS = 1 << 0;
export const AUTOCLEAR_BITMAPS = 1 << 0;
export const AUTOCLEAR_DATA_FILE_RAW = 1 << 1;

/** Header extension types QEMU knows. */
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_CRYPTO_HEADER = 0x0537be77;
export const EXT_BITMAPS = 0x23852875;
export const EXT_DATA_FILE = 0x44415441;

/** The feature name table QEMU 7.2 writes, in its order: [type, bit, name]. */
export const FEATURE_NAMES: ReadonlyArray<readonly [number, number, string]> = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

/** Table entry bits (L1, L2, refcount table). */
export const OFFSET_MASK = 0x00fffffffffffe00n; // bits 9..55
export const OFLAG_COPIED = 1n << 63n;
export const OFLAG_COMPRESSED = 1n << 62n;
export const OFLAG_ZERO = 1n; // bit 0 of a standard L2 entry (v3)
export const L1_RESERVED = 0x7f000000000001ffn; // bits 1..8 and 56..62 must be zero
export const REFT_OFFSET_MASK = 0xfffffffffffffe00n;

/** Largest L1 table QEMU accepts (32 MiB of entries), and refcount table (8 MiB). */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;

/** Feature bitmaps: QEMU knows bits in the low word only; the high word is kept apart. */
const FEATURE_FIELDS = new Set(['incompatibleFeatures', 'compatibleFeatures', 'autoclearFeatures']);

function readField(buf: Buffer, f: Field): number {
  if (f.type === 'u32') return buf.readUInt32BE(f.offset);
  if (FEATURE_FIELDS.has(f.name)) return buf.readUInt32BE(f.offset + 4);
  if (f.type === 'u8') return buf.readUInt8(f.offset);
  const v = buf.readBigUInt64BE(f.offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw malformed(snake(f.name), `value ${v} is beyond what any image can address`, f.offset);
  }
  return Number(v);
}

/** qcow2.txt's name for a header field, which is what error messages use. */
export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()).replace(/^l1_/, 'l1_');
}

export function parseHeader(buf: Buffer): Qcow2Header {
  if (buf.length < V2_HEADER_LENGTH) throw malformed('header', `file too short for a qcow2 header (${buf.length} bytes)`);
  const h = {} as Qcow2Header;
  const version = buf.readUInt32BE(4);
  for (const f of HEADER_FIELDS) {
    if (f.since === 3 && version < 3) continue;
    if (f.offset + (f.type === 'u64' ? 8 : f.type === 'u32' ? 4 : 1) > buf.length) continue;
    h[f.name] = readField(buf, f);
  }
  if (version >= 3 && buf.length >= 96) {
    h.featuresHigh = { incompatible: buf.readUInt32BE(72), compatible: buf.readUInt32BE(80), autoclear: buf.readUInt32BE(88) };
  }
  if (version < 3) {
    h.incompatibleFeatures = 0;
    h.compatibleFeatures = 0;
    h.autoclearFeatures = 0;
    h.refcountOrder = 4;
    h.headerLength = V2_HEADER_LENGTH;
    h.compressionType = 0;
  } else if (!(h.headerLength > 104)) {
    h.compressionType = 0;
  }
  return h;
}

export function serializeHeader(h: Qcow2Header, into: Buffer): void {
  for (const f of HEADER_FIELDS) {
    if (f.since === 3 && h.version < 3) continue;
    const v = h[f.name] as number;
    if (FEATURE_FIELDS.has(f.name)) {
      const hi = h.featuresHigh?.[f.name.replace('Features', '') as 'incompatible' | 'compatible' | 'autoclear'] ?? 0;
      into.writeUInt32BE(hi >>> 0, f.offset);
      into.writeUInt32BE(v >>> 0, f.offset + 4);
    } else if (f.type === 'u32') into.writeUInt32BE(v, f.offset);
    else if (f.type === 'u8') into.writeUInt8(v, f.offset);
    else into.writeBigUInt64BE(BigInt(v), f.offset);
  }
}

export interface HeaderExtension { type: number; data: Buffer }

/** Extensions follow the header, each 8-byte aligned, up to an END marker or the first cluster's end. */
export function parseExtensions(cluster0: Buffer, start: number, end: number): HeaderExtension[] {
  const exts: HeaderExtension[] = [];
  let pos = start;
  while (pos + 8 <= end) {
    const type = cluster0.readUInt32BE(pos);
    const len = cluster0.readUInt32BE(pos + 4);
    if (type === EXT_END) return exts;
    if (pos + 8 + len > end) throw malformed('header_extension', `extension 0x${type.toString(16)} of ${len} bytes runs past the header area`, pos);
    exts.push({ type, data: cluster0.subarray(pos + 8, pos + 8 + len) });
    pos += 8 + align(len, 8);
  }
  return exts;
}

export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function featureTable(): Buffer {
  const t = Buffer.alloc(FEATURE_NAMES.length * 48);
  FEATURE_NAMES.forEach(([type, bit, name], i) => {
    t.writeUInt8(type, i * 48);
    t.writeUInt8(bit, i * 48 + 1);
    t.write(name, i * 48 + 2, 'latin1');
  });
  return t;
}

/**
 * Header extensions and backing file name, laid out the way QEMU's
 * qcow2_update_header writes them, so images are byte-identical.
 */
export function buildHeaderTail(opts: {
  version: number;
  clusterSize: number;
  headerLength: number;
  backingFile?: string;
  backingFormat?: string;
  dataFile?: string;
  /** the full disk encryption header extension's 16 bytes (offset, length of the LUKS header) */
  crypto?: Buffer;
  extra?: HeaderExtension[];
}): { tail: Buffer; backingFileOffset: number; backingFileSize: number } {
  const parts: Buffer[] = [];
  const ext = (type: number, data: Buffer) => {
    const b = Buffer.alloc(8 + align(data.length, 8));
    b.writeUInt32BE(type, 0);
    b.writeUInt32BE(data.length, 4);
    data.copy(b, 8);
    parts.push(b);
  };
  if (opts.backingFormat) ext(EXT_BACKING_FORMAT, Buffer.from(opts.backingFormat, 'utf8'));
  if (opts.dataFile) ext(EXT_DATA_FILE, Buffer.from(opts.dataFile, 'utf8'));
  if (opts.crypto) ext(EXT_CRYPTO_HEADER, opts.crypto);
  // QEMU leaves the feature name table out for clusters of 4 KiB and less: with
  // 8 names it would crowd out the backing file name.
  if (opts.version >= 3 && opts.clusterSize > 4096) ext(EXT_FEATURE_TABLE, featureTable());
  for (const e of opts.extra ?? []) ext(e.type, e.data);
  parts.push(Buffer.alloc(8)); // END (all zero; v2 images carry it too)
  let backingFileOffset = 0;
  let backingFileSize = 0;
  const extLen = parts.reduce((n, p) => n + p.length, 0);
  if (opts.backingFile) {
    const name = Buffer.from(opts.backingFile, 'utf8');
    backingFileOffset = opts.headerLength + extLen;
    backingFileSize = name.length;
    parts.push(name);
  }
  const tail = Buffer.concat(parts);
  if (opts.headerLength + tail.length > opts.clusterSize) {
    throw new BlockError('invalid-option', `backing_file: the name is too long to fit in the first cluster (${opts.clusterSize} bytes)`, { option: 'backing_file' });
  }
  return { tail, backingFileOffset, backingFileSize };
}
