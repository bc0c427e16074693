/**
 * Reading guest bytes from a backing node that may be shorter than the
 * overlay: what lies past the backing node's end reads as zeroes (as in QEMU's
 * qed and qcow drivers). Shared by the formats that keep no data of their own
 * for unallocated clusters.
 */
import type { BlockNode, BlockStatus } from '../node.js';

export async function readBacking(backing: BlockNode | null | undefined, offset: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  if (!backing) return out;
  const avail = Math.max(0, Math.min(length, backing.size() - offset));
  if (avail > 0) (await backing.read(offset, avail)).copy(out, 0);
  return out;
}

/** Block status of an extent this layer leaves unallocated. */
export async function backingStatus(backing: BlockNode | null | undefined, offset: number, length: number): Promise<BlockStatus> {
  if (backing && offset < backing.size()) {
    const b = await backing.blockStatus(offset, Math.min(length, backing.size() - offset));
    return { ...b, offset, length: b.length, depth: b.depth + 1 };
  }
  return { offset, length, data: false, zero: true, present: false, depth: 0 };
}
