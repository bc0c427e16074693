/**
 * The qcow2 snapshot table (docs/interop/qcow2.txt, "Snapshots"): nb_snapshots
 * entries from snapshots_offset, each 8-byte aligned:
 *
 *    0  u64 l1_table_offset     8  u32 l1_size
 *   12  u16 id_str_size        14  u16 name_size
 *   16  u32 date_sec           20  u32 date_nsec
 *   24  u64 vm_clock_nsec      32  u32 vm_state_size
 *   36  u32 extra_data_size    40  extra data, then id_str, then name (no NULs)
 *
 * Extra data (QEMU 7.2 writes 24 bytes): u64 vm_state_size_large, u64 disk_size,
 * u64 icount (-1: not recorded). Longer extra data is kept as it is.
 */
import { BlockError, malformed } from '../../errors.js';
import type { BlockNode } from '../../node.js';

export const SNAPSHOT_HEADER_SIZE = 40;
export const SNAPSHOT_EXTRA_SIZE = 24;
/** QEMU's limits: QCOW_MAX_SNAPSHOTS, QCOW_MAX_SNAPSHOT_EXTRA_DATA, QCOW_MAX_SNAPSHOTS_SIZE */
export const MAX_SNAPSHOTS = 65536;
export const MAX_SNAPSHOT_EXTRA = 1024;
export const MAX_SNAPSHOTS_SIZE = 64 * 1024 * 1024;

export interface Qcow2Snapshot {
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  vmStateSize: number;
  /** guest size when the snapshot was taken (older entries without it: the current size) */
  diskSize: number;
  /** instruction count; -1 when the entry does not record one */
  icount: number;
  /** extra data beyond the 24 bytes QEMU knows, written back unchanged */
  unknownExtra: Buffer;
}

/** Reads the table, bounded by QEMU's limits and by the file; a table that cannot be right is a typed error. */
export async function readSnapshotTable(file: BlockNode, offset: number, count: number, clusterSize: number, currentSize: number): Promise<{ snapshots: Qcow2Snapshot[]; size: number }> {
  if (count === 0) return { snapshots: [], size: 0 };
  if (count > MAX_SNAPSHOTS) throw malformed('nb_snapshots', `${count} snapshots exceed QEMU's limit of ${MAX_SNAPSHOTS} (snapshot table too large)`, 60);
  if (offset % clusterSize !== 0) throw malformed('snapshots_offset', `snapshot table offset 0x${offset.toString(16)} is not cluster aligned`, 64);
  if (offset < clusterSize) throw malformed('snapshots_offset', `snapshot table offset 0x${offset.toString(16)} overlaps the image header`, 64);
  const fileSize = file.size();
  if (offset + count * SNAPSHOT_HEADER_SIZE > fileSize) {
    throw malformed('snapshots_offset', `snapshot table of ${count} entries at 0x${offset.toString(16)} extends beyond the end of the file (${fileSize} bytes)`, 64);
  }
  const reader = new ChunkReader(file, offset, Math.min(fileSize, offset + MAX_SNAPSHOTS_SIZE));
  const snapshots: Qcow2Snapshot[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    pos = Math.ceil(pos / 8) * 8;
    const h = await reader.bytes(pos, SNAPSHOT_HEADER_SIZE, i);
    const idSize = h.readUInt16BE(12);
    const nameSize = h.readUInt16BE(14);
    const extraSize = h.readUInt32BE(36);
    if (extraSize > MAX_SNAPSHOT_EXTRA) {
      throw new BlockError('malformed', `snapshot table: Too much extra metadata in snapshot table entry ${i} (${extraSize} bytes, at most ${MAX_SNAPSHOT_EXTRA})`, { field: 'snapshot table', offset: offset + pos + 36 });
    }
    pos += SNAPSHOT_HEADER_SIZE;
    const extra = await reader.bytes(pos, extraSize, i);
    pos += extraSize;
    const id = (await reader.bytes(pos, idSize, i)).toString('utf8');
    pos += idSize;
    const name = (await reader.bytes(pos, nameSize, i)).toString('utf8');
    pos += nameSize;
    const u64 = (b: Buffer, at: number) => {
      const v = b.readBigUInt64BE(at);
      return v === 0xffffffffffffffffn ? -1 : v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    };
    const l1 = h.readBigUInt64BE(0);
    snapshots.push({
      l1TableOffset: l1 > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(l1),
      l1Size: h.readUInt32BE(8),
      id, name,
      dateSec: h.readUInt32BE(16),
      dateNsec: h.readUInt32BE(20),
      vmClockNsec: u64(h, 24),
      vmStateSize: extraSize >= 8 ? u64(extra, 0) : h.readUInt32BE(32),
      diskSize: extraSize >= 16 ? u64(extra, 8) : currentSize,
      icount: extraSize >= 24 ? u64(extra, 16) : -1,
      unknownExtra: Buffer.from(extra.subarray(Math.min(extraSize, SNAPSHOT_EXTRA_SIZE))),
    });
  }
  return { snapshots, size: pos };
}

/** The bytes of a table, as qcow2_write_snapshots lays them out (no padding after the last entry). */
export function serializeSnapshotTable(list: readonly Qcow2Snapshot[]): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  for (const sn of list) {
    const pad = Math.ceil(pos / 8) * 8 - pos;
    if (pad) parts.push(Buffer.alloc(pad));
    pos += pad;
    const id = Buffer.from(sn.id, 'utf8');
    const name = Buffer.from(sn.name, 'utf8');
    const extraSize = SNAPSHOT_EXTRA_SIZE + sn.unknownExtra.length;
    const h = Buffer.alloc(SNAPSHOT_HEADER_SIZE + extraSize);
    h.writeBigUInt64BE(BigInt(sn.l1TableOffset), 0);
    h.writeUInt32BE(sn.l1Size, 8);
    h.writeUInt16BE(id.length, 12);
    h.writeUInt16BE(name.length, 14);
    h.writeUInt32BE(sn.dateSec >>> 0, 16);
    h.writeUInt32BE(sn.dateNsec >>> 0, 20);
    h.writeBigUInt64BE(u64Of(sn.vmClockNsec), 24);
    // a VM state beyond 32 bits: old readers see a disk-only snapshot rather than a truncated one
    h.writeUInt32BE(sn.vmStateSize <= 0xffffffff && sn.vmStateSize >= 0 ? sn.vmStateSize : 0, 32);
    h.writeUInt32BE(extraSize, 36);
    h.writeBigUInt64BE(u64Of(sn.vmStateSize), 40);
    h.writeBigUInt64BE(u64Of(sn.diskSize), 48);
    h.writeBigUInt64BE(u64Of(sn.icount), 56);
    sn.unknownExtra.copy(h, 64);
    parts.push(h, id, name);
    pos += h.length + id.length + name.length;
  }
  const out = Buffer.concat(parts);
  if (out.length > MAX_SNAPSHOTS_SIZE) throw new BlockError('invalid-option', `snapshot table of ${out.length} bytes exceeds QEMU's limit of ${MAX_SNAPSHOTS_SIZE}`, { field: 'snapshot table' });
  return out;
}

function u64Of(n: number): bigint {
  return n < 0 ? 0xffffffffffffffffn : BigInt(n);
}

/** Sequential reads of a table in chunks, never past `limit` (the file's end or QEMU's table limit). */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  constructor(private file: BlockNode, private base: number, private limit: number) {}

  async bytes(pos: number, len: number, entry: number): Promise<Buffer> {
    const abs = this.base + pos;
    if (abs + len > this.limit) {
      throw new BlockError('malformed', `snapshot table: entry ${entry} runs past ${this.limit === this.file.size() ? 'the end of the file' : `QEMU's limit of ${MAX_SNAPSHOTS_SIZE} bytes`}`, { field: 'snapshot table', offset: abs });
    }
    if (abs < this.bufStart || abs + len > this.bufStart + this.buf.length) {
      const n = Math.min(this.limit - abs, Math.max(len, 256 * 1024));
      this.buf = await this.file.read(abs, n);
      this.bufStart = abs;
    }
    return this.buf.subarray(abs - this.bufStart, abs - this.bufStart + len);
  }
}
