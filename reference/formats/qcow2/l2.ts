/**
 * qcow2 L2 entries. A standard entry is 64 bits; with extended_l2 each entry is
 * followed by a 64-bit subcluster bitmap (low 32 bits: allocated, high 32: zero).
 *
 * Entries are handled as two 32-bit halves: plain JS numbers are much faster
 * than BigInt on the I/O path, and no offset needs more than 56 bits.
 */

export type ClusterKind = 'unallocated' | 'zero-plain' | 'zero-alloc' | 'normal' | 'compressed';

export interface L2Entry {
  kind: ClusterKind;
  /** host offset of the cluster (normal, zero-alloc); compressed: byte offset of the data */
  host: number;
  copied: boolean;
  /** compressed: bytes to read (whole sectors) */
  compressedSize: number;
  /** extended L2 only */
  allocBits: number;
  zeroBits: number;
}

export const SUBCLUSTERS = 32;

export class L2Codec {
  readonly entrySize: number;
  readonly entries: number;
  private readonly csizeShift: number;
  private readonly csizeMask: number;

  /**
   * With an external data file, offset 0 is a real cluster; QEMU tells it from
   * "unallocated" by the COPIED flag (data file clusters always count 1).
   */
  dataFile = false;

  constructor(readonly clusterBits: number, readonly extended: boolean) {
    this.entrySize = extended ? 16 : 8;
    this.entries = 2 ** clusterBits / this.entrySize;
    // Compressed descriptor: bits 0..x-1 offset, x..61 (additional sectors), x = 62-(cluster_bits-8)
    this.csizeShift = 62 - (clusterBits - 8);
    this.csizeMask = 2 ** (clusterBits - 8) - 1;
  }

  decode(table: Buffer, i: number): L2Entry {
    const p = i * this.entrySize;
    const hi = table.readUInt32BE(p);
    const lo = table.readUInt32BE(p + 4);
    const copied = hi >>> 31 === 1;
    let allocBits = 0;
    let zeroBits = 0;
    if (this.extended) {
      zeroBits = table.readUInt32BE(p + 8);
      allocBits = table.readUInt32BE(p + 12);
    }
    if ((hi >>> 30) & 1) {
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      const host = Number(v & ((1n << BigInt(this.csizeShift)) - 1n));
      const sectors = Number((v >> BigInt(this.csizeShift)) & BigInt(this.csizeMask)) + 1;
      // The size counts 512-byte sectors from the sector that holds `host`.
      const compressedSize = sectors * 512 - (host & 511);
      return { kind: 'compressed', host, copied: false, compressedSize, allocBits: 0, zeroBits: 0 };
    }
    const hostOffset = (hi & 0x00ffffff) * 4294967296 + (((lo >>> 9) << 9) >>> 0);
    const zero = !this.extended && (lo & 1) === 1;
    let kind: ClusterKind;
    if (zero) kind = hostOffset ? 'zero-alloc' : 'zero-plain';
    else kind = hostOffset || (this.dataFile && copied) ? 'normal' : 'unallocated';
    return { kind, host: hostOffset, copied, compressedSize: 0, allocBits, zeroBits };
  }

  /** Standard entry for a host cluster (or 0), with the COPIED and ZERO flags. */
  encode(table: Buffer, i: number, host: number, copied: boolean, zero: boolean, bitmap?: { alloc: number; zero: number }): void {
    const p = i * this.entrySize;
    const hi = (copied ? 0x80000000 : 0) | Math.floor(host / 4294967296);
    const lo = ((host % 4294967296) | (zero && !this.extended ? 1 : 0)) >>> 0;
    table.writeUInt32BE(hi >>> 0, p);
    table.writeUInt32BE(lo, p + 4);
    if (this.extended) {
      table.writeUInt32BE((bitmap?.zero ?? 0) >>> 0, p + 8);
      table.writeUInt32BE((bitmap?.alloc ?? 0) >>> 0, p + 12);
    }
  }

  encodeCompressed(table: Buffer, i: number, host: number, length: number): void {
    const p = i * this.entrySize;
    const sectors = Math.floor((host + length - 1) / 512) - Math.floor(host / 512);
    const v = (1n << 62n) | (BigInt(sectors) << BigInt(this.csizeShift)) | BigInt(host);
    table.writeBigUInt64BE(v, p);
    if (this.extended) table.writeBigUInt64BE(0n, p + 8);
  }
}
