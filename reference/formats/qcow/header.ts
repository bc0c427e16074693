/**
 * qcow version 1 header (QEMU's block/qcow.c), big-endian:
 *
 *   off size field
 *     0   4  magic                "QFI\xfb"
 *     4   4  version              1
 *     8   8  backing_file_offset  0 = no backing file
 *    16   4  backing_file_size    bytes of the name (at most 1023)
 *    20   4  mtime                (unused, 0)
 *    24   8  size                 guest size in bytes
 *    32   1  cluster_bits         9 .. 16
 *    33   1  l2_bits              6 .. 13 (entries per L2 table = 2^l2_bits)
 *    34   2  padding
 *    36   4  crypt_method         0 none, 1 AES (read by the reference; see image.ts)
 *    40   8  l1_table_offset
 *
 * L1 entries are L2 table offsets (0 = none). L2 entries are 0 (unallocated:
 * backing file or zeroes), a cluster offset, or, with bit 63 set, a compressed
 * cluster: the low 63 - cluster_bits bits are its file offset and the next
 * cluster_bits bits its compressed length (raw deflate).
 */
import { BlockError, malformed } from '../../errors.js';

export const QCOW_MAGIC = 0x514649fb;
export const HEADER_BYTES = 48;
export const MAX_BACKING_NAME = 1023;
export const COMPRESSED = 1n << 63n;

export interface QcowHeader {
  backingFileOffset: number;
  backingFileSize: number;
  mtime: number;
  size: number;
  clusterBits: number;
  l2Bits: number;
  cryptMethod: number;
  l1TableOffset: number;
  l1Size: number;
}

export function encodeHeader(h: QcowHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32BE(QCOW_MAGIC, 0);
  b.writeUInt32BE(1, 4);
  b.writeBigUInt64BE(BigInt(h.backingFileOffset), 8);
  b.writeUInt32BE(h.backingFileSize, 16);
  b.writeUInt32BE(h.mtime, 20);
  b.writeBigUInt64BE(BigInt(h.size), 24);
  b.writeUInt8(h.clusterBits, 32);
  b.writeUInt8(h.l2Bits, 33);
  b.writeUInt32BE(h.cryptMethod, 36);
  b.writeBigUInt64BE(BigInt(h.l1TableOffset), 40);
  return b;
}

/** L1 entries needed for `size` bytes with these bits (QEMU's computation). */
export function l1SizeFor(size: bigint, clusterBits: number, l2Bits: number): bigint {
  const span = 1n << BigInt(clusterBits + l2Bits);
  return (size + span - 1n) / span;
}

/** Decode and validate everything later lookups rely on. */
export function decodeHeader(b: Buffer, fileLength: number): QcowHeader {
  if (b.length < HEADER_BYTES) throw malformed('magic', `file too short for a qcow header (${b.length} bytes)`, 0);
  if (b.readUInt32BE(0) !== QCOW_MAGIC) throw malformed('magic', 'not a qcow image', 0);
  const version = b.readUInt32BE(4);
  if (version !== 1) throw new BlockError('unsupported', `version: Unsupported qcow version ${version}`, { field: 'version', offset: 4 });
  const sizeBig = b.readBigUInt64BE(24);
  if (sizeBig <= 1n) throw malformed('size', `Image size is too small (must be at least 2 bytes): ${sizeBig}`, 24);
  const clusterBits = b.readUInt8(32);
  if (clusterBits < 9 || clusterBits > 16) throw malformed('cluster_bits', `${clusterBits}: Cluster size must be between 512 and 64k`, 32);
  const l2Bits = b.readUInt8(33);
  if (l2Bits < 6 || l2Bits > 13) throw malformed('l2_bits', `${l2Bits}: L2 table size must be between 512 and 64k`, 33);
  const cryptMethod = b.readUInt32BE(36);
  if (cryptMethod > 1) throw malformed('crypt_method', `invalid encryption method ${cryptMethod}`, 36);
  const shift = BigInt(clusterBits + l2Bits);
  if (sizeBig > (1n << 64n) - 1n - (1n << shift)) throw malformed('size', `Image too large: ${sizeBig}`, 24);
  if (sizeBig > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('size', `${sizeBig} is beyond what the reference handles (2^53)`, 24);
  const l1Size = l1SizeFor(sizeBig, clusterBits, l2Bits);
  if (l1Size > BigInt(Math.floor(0x7fffffff / 8))) throw malformed('size', `Image too large: its L1 table would have ${l1Size} entries`, 24);
  const l1TableOffsetBig = b.readBigUInt64BE(40);
  // The L1 table must lie in the file, after the header: it is read whole on open.
  if (l1TableOffsetBig < BigInt(HEADER_BYTES) || l1TableOffsetBig + l1Size * 8n > BigInt(fileLength)) {
    throw malformed('l1_table_offset', `L1 table of ${l1Size} entries at ${l1TableOffsetBig} does not lie within the ${fileLength}-byte file after the header`, 40);
  }
  const backingFileOffsetBig = b.readBigUInt64BE(8);
  const backingFileSize = b.readUInt32BE(16);
  if (backingFileOffsetBig !== 0n) {
    if (backingFileSize > MAX_BACKING_NAME) throw malformed('backing_file_size', `${backingFileSize}: Backing file name too long`, 16);
    if (backingFileOffsetBig + BigInt(backingFileSize) > BigInt(fileLength)) {
      throw malformed('backing_file_offset', `backing file name ${backingFileOffsetBig}+${backingFileSize} runs past the end of the ${fileLength}-byte file`, 8);
    }
  }
  return {
    backingFileOffset: Number(backingFileOffsetBig), backingFileSize, mtime: b.readUInt32BE(20), size: Number(sizeBig),
    clusterBits, l2Bits, cryptMethod, l1TableOffset: Number(l1TableOffsetBig), l1Size: Number(l1Size),
  };
}
