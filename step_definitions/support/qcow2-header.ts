/**
 * Just enough of the qcow2 on-disk layout (qemu docs/interop/qcow2.txt) for the
 * suite to build defective images and to simulate crashes: the header fields as
 * one table of big-endian offsets, and readers/patchers over a file.
 */
import { open } from 'node:fs/promises';

/** Header fields: byte offset and width (bytes), all big-endian. */
export const HEADER = {
  magic: { at: 0, width: 4 },
  version: { at: 4, width: 4 },
  backing_file_offset: { at: 8, width: 8 },
  backing_file_size: { at: 16, width: 4 },
  cluster_bits: { at: 20, width: 4 },
  size: { at: 24, width: 8 },
  crypt_method: { at: 32, width: 4 },
  l1_size: { at: 36, width: 4 },
  l1_table_offset: { at: 40, width: 8 },
  refcount_table_offset: { at: 48, width: 8 },
  refcount_table_clusters: { at: 56, width: 4 },
  nb_snapshots: { at: 60, width: 4 },
  snapshots_offset: { at: 64, width: 8 },
  // version 3 only
  incompatible_features: { at: 72, width: 8 },
  compatible_features: { at: 80, width: 8 },
  autoclear_features: { at: 88, width: 8 },
  refcount_order: { at: 96, width: 4 },
  header_length: { at: 100, width: 4 },
} as const;

export type HeaderField = keyof typeof HEADER;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;

/** L1/L2 entries: bits 9..55 hold the host offset; bit 62 marks a compressed cluster. */
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const COMPRESSED = 1n << 62n;

export async function readField(path: string, field: HeaderField): Promise<bigint> {
  const { at, width } = HEADER[field];
  const buf = await readAt(path, at, width);
  return width === 8 ? buf.readBigUInt64BE(0) : BigInt(buf.readUInt32BE(0));
}

export async function writeField(path: string, field: HeaderField, value: bigint): Promise<void> {
  const { at, width } = HEADER[field];
  const buf = Buffer.alloc(width);
  if (width === 8) buf.writeBigUInt64BE(BigInt.asUintN(64, value));
  else buf.writeUInt32BE(Number(BigInt.asUintN(32, value)));
  await writeAt(path, at, buf);
}

export async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

export interface Layout {
  clusterSize: number;
  refcountBits: number;
  refcountTableOffset: number;
  l1TableOffset: number;
  l1Size: number;
}

export async function readLayout(path: string): Promise<Layout> {
  const version = await readField(path, 'version');
  const refcountOrder = version >= 3n ? Number(await readField(path, 'refcount_order')) : 4;
  return {
    clusterSize: 2 ** Number(await readField(path, 'cluster_bits')),
    refcountBits: 2 ** refcountOrder,
    refcountTableOffset: Number(await readField(path, 'refcount_table_offset')),
    l1TableOffset: Number(await readField(path, 'l1_table_offset')),
    l1Size: Number(await readField(path, 'l1_size')),
  };
}

/** Sets the refcount of one host cluster (the refcount block must already exist). */
export async function setRefcount(path: string, clusterIndex: number, value: number): Promise<void> {
  const l = await readLayout(path);
  const entriesPerBlock = (l.clusterSize * 8) / l.refcountBits;
  const tableIndex = Math.floor(clusterIndex / entriesPerBlock);
  const blockOffset = Number((await readAt(path, l.refcountTableOffset + tableIndex * 8, 8)).readBigUInt64BE(0));
  if (blockOffset === 0) throw new Error(`no refcount block covers cluster ${clusterIndex}`);
  const bitIndex = (clusterIndex % entriesPerBlock) * l.refcountBits;
  if (l.refcountBits >= 8) {
    const bytes = l.refcountBits / 8;
    const buf = Buffer.alloc(bytes);
    let v = BigInt(value);
    for (let i = bytes - 1; i >= 0; i--) {
      buf[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    await writeAt(path, blockOffset + bitIndex / 8, buf);
  } else {
    // sub-byte widths pack the lowest entry in the least significant bits of each byte
    const byteAt = blockOffset + Math.floor(bitIndex / 8);
    const shift = bitIndex % 8;
    const mask = ((1 << l.refcountBits) - 1) << shift;
    const old = (await readAt(path, byteAt, 1))[0] ?? 0;
    await writeAt(path, byteAt, Buffer.from([(old & ~mask) | ((value << shift) & mask)]));
  }
}

/** Host offsets of every uncompressed data cluster that an L2 table references. */
export async function dataClusters(path: string): Promise<number[]> {
  const l = await readLayout(path);
  const l1 = await readAt(path, l.l1TableOffset, l.l1Size * 8);
  const extendedL2 = ((await readField(path, 'version')) >= 3n) && ((await readField(path, 'incompatible_features')) & (1n << 4n)) !== 0n;
  const l2EntrySize = extendedL2 ? 16 : 8;
  const found: number[] = [];
  for (let i = 0; i + 8 <= l1.length; i += 8) {
    const l2Offset = Number(l1.readBigUInt64BE(i) & OFFSET_MASK);
    if (l2Offset === 0) continue;
    const l2 = await readAt(path, l2Offset, l.clusterSize);
    for (let j = 0; j + 8 <= l2.length; j += l2EntrySize) {
      const e = l2.readBigUInt64BE(j);
      if (e & COMPRESSED) continue;
      const host = Number(e & OFFSET_MASK);
      if (host !== 0) found.push(host);
    }
  }
  return found;
}
