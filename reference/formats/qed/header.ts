/**
 * QED on-disk header (QEMU's docs/interop/qed_spec.txt), all little-endian:
 *
 *   off size field
 *     0   4  magic               "QED\0"
 *     4   4  cluster_size        bytes, power of two, 4 KiB .. 64 MiB
 *     8   4  table_size          clusters per L1/L2 table, power of two, 1 .. 16
 *    12   4  header_size         clusters of the header area (>= 1)
 *    16   8  features            incompatible: 1 backing file, 2 need check, 4 backing is raw (no probe)
 *    24   8  compat_features     none defined
 *    32   8  autoclear_features  none defined (unknown bits are cleared by a writer)
 *    40   8  l1_table_offset     bytes, cluster aligned
 *    48   8  image_size          guest size in bytes, multiple of 512
 *    56   4  backing_filename_offset
 *    60   4  backing_filename_size
 *
 * Guest offset -> L1 index (offset / (cluster_size * entries)), L2 index
 * ((offset / cluster_size) mod entries), entries = table_size * cluster_size / 8.
 * An L2 entry is 0 (unallocated: read the backing file or zeroes), 1 (reads as
 * zeroes) or the cluster-aligned file offset of the data.
 */
import { BlockError, malformed } from '../../errors.js';

export const QED_MAGIC = 0x00444551;
export const HEADER_BYTES = 64;
export const F_BACKING_FILE = 1n;
export const F_NEED_CHECK = 2n;
export const F_BACKING_NO_PROBE = 4n;
export const KNOWN_FEATURES = F_BACKING_FILE | F_NEED_CHECK | F_BACKING_NO_PROBE;
export const MIN_CLUSTER = 4096;
export const MAX_CLUSTER = 64 * 1024 * 1024;
export const ZERO_CLUSTER = 1;
/** QEMU reads the backing name into a PATH_MAX buffer. */
export const MAX_BACKING_NAME = 4095;

export interface QedHeader {
  clusterSize: number;
  tableSize: number;
  headerSize: number;
  features: bigint;
  compatFeatures: bigint;
  autoclearFeatures: bigint;
  l1TableOffset: number;
  imageSize: number;
  backingNameOffset: number;
  backingNameSize: number;
}

export const isPow2 = (v: number): boolean => v > 0 && (v & (v - 1)) === 0;

/** The largest image size QEMU allows, with its uint64 wrap-around (2M clusters x 16 overflow to 0). */
export function maxImageSize(clusterSize: number, tableSize: number): bigint {
  const entries = BigInt(tableSize * clusterSize) / 8n;
  return (entries * BigInt(clusterSize) * entries) & ((1n << 64n) - 1n);
}

export function encodeHeader(h: QedHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32LE(QED_MAGIC, 0);
  b.writeUInt32LE(h.clusterSize, 4);
  b.writeUInt32LE(h.tableSize, 8);
  b.writeUInt32LE(h.headerSize, 12);
  b.writeBigUInt64LE(h.features, 16);
  b.writeBigUInt64LE(h.compatFeatures, 24);
  b.writeBigUInt64LE(h.autoclearFeatures, 32);
  b.writeBigUInt64LE(BigInt(h.l1TableOffset), 40);
  b.writeBigUInt64LE(BigInt(h.imageSize), 48);
  b.writeUInt32LE(h.backingNameOffset, 56);
  b.writeUInt32LE(h.backingNameSize, 60);
  return b;
}

function u64(b: Buffer, at: number, field: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(field, `${v} is beyond what the reference handles (2^53)`, at);
  return Number(v);
}

/**
 * Decode and validate the header against the file length, in QEMU's order,
 * so that every later table lookup can trust these fields.
 */
export function decodeHeader(b: Buffer, fileLength: number): QedHeader {
  if (b.length < HEADER_BYTES) throw malformed('magic', `file too short for a QED header (${b.length} bytes)`, 0);
  if (b.readUInt32LE(0) !== QED_MAGIC) throw malformed('magic', 'Image not in QED format', 0);
  const features = b.readBigUInt64LE(16);
  if (features & ~KNOWN_FEATURES) {
    throw new BlockError('unsupported', `features: unsupported QED features: ${(features & ~KNOWN_FEATURES).toString(16)}`, { field: 'features', offset: 16 });
  }
  const clusterSize = b.readUInt32LE(4);
  if (!isPow2(clusterSize) || clusterSize < MIN_CLUSTER || clusterSize > MAX_CLUSTER) {
    throw malformed('cluster_size', `${clusterSize} is not a power of two between 4096 and 67108864`, 4);
  }
  const tableSize = b.readUInt32LE(8);
  if (!isPow2(tableSize) || tableSize > 16) throw malformed('table_size', `${tableSize} is not a power of two between 1 and 16`, 8);
  const headerSize = b.readUInt32LE(12);
  if (headerSize < 1 || headerSize * clusterSize > fileLength) {
    throw malformed('header_size', `${headerSize} clusters does not fit the ${fileLength}-byte file`, 12);
  }
  const imageSizeBig = b.readBigUInt64LE(48);
  const max = maxImageSize(clusterSize, tableSize);
  if (imageSizeBig % 512n !== 0n || imageSizeBig > max) {
    throw malformed('image_size', `${imageSizeBig} is not a multiple of 512 at most ${max} (cluster_size ${clusterSize}, table_size ${tableSize})`, 48);
  }
  const h: QedHeader = {
    clusterSize, tableSize, headerSize, features,
    compatFeatures: b.readBigUInt64LE(24),
    autoclearFeatures: b.readBigUInt64LE(32),
    l1TableOffset: u64(b, 40, 'l1_table_offset'),
    imageSize: u64(b, 48, 'image_size'),
    backingNameOffset: b.readUInt32LE(56),
    backingNameSize: b.readUInt32LE(60),
  };
  const fileEnd = Math.floor(fileLength / clusterSize) * clusterSize;
  if (!tableOffsetValid(h, fileEnd, h.l1TableOffset)) {
    throw malformed('l1_table_offset', `${h.l1TableOffset} is not a valid table offset (QED table offset is invalid) in a ${fileLength}-byte file`, 40);
  }
  if (features & F_BACKING_FILE) {
    if (h.backingNameOffset + h.backingNameSize > clusterSize * headerSize) {
      throw malformed('backing_filename_offset', `backing file name ${h.backingNameOffset}+${h.backingNameSize} runs past the header area`, 56);
    }
    if (h.backingNameSize > MAX_BACKING_NAME) throw malformed('backing_filename_size', `${h.backingNameSize} bytes is too long`, 60);
  }
  return h;
}

/** A data or table cluster offset must be cluster aligned, past the header and inside the file. */
export function clusterOffsetValid(h: QedHeader, fileEnd: number, offset: number): boolean {
  return offset % h.clusterSize === 0 && offset >= h.headerSize * h.clusterSize && offset < fileEnd;
}

/**
 * A table must start and end inside the file. (QEMU 7.2 takes a table whose
 * last cluster is its first, table_size 1, for an overflow and refuses the
 * image; the manual allows table_size 1, and so do we.)
 */
export function tableOffsetValid(h: QedHeader, fileEnd: number, offset: number): boolean {
  const end = offset + (h.tableSize - 1) * h.clusterSize;
  return clusterOffsetValid(h, fileEnd, offset) && clusterOffsetValid(h, fileEnd, end);
}
