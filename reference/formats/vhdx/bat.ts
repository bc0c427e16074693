/**
 * The block allocation table: one u64 per payload block (file offset in its
 * upper 44 bits, in MiB units; state in its low 3 bits), with a sector bitmap
 * entry after every `chunk ratio` payload entries (2^23 sectors' worth of
 * blocks). QEMU computes the entry count in 32-bit arithmetic, so an empty
 * disk gets a BAT region sized for 2^32 / chunk ratio entries: kept as is.
 */
import { STATE } from './layout.js';
import type { RegionMap } from './regions.js';

export const OFFSET_MASK = 0xfffffffffff00000n;

export interface BatGeometry {
  blockSize: number;
  chunkRatio: number;
  chunkRatioBits: number;
  entries: number;
}

export function batGeometry(virtualSize: number, blockSize: number, logicalSectorSize = 512): BatGeometry {
  const chunkRatio = ((1 << 23) * logicalSectorSize) / blockSize;
  const chunkRatioBits = Math.log2(chunkRatio);
  const dataBlocks = Math.ceil(virtualSize / blockSize) >>> 0;
  const entries = (dataBlocks + (((dataBlocks - 1) >>> 0) >>> chunkRatioBits)) >>> 0;
  return { blockSize, chunkRatio, chunkRatioBits, entries };
}

/** BAT index of the payload block holding guest byte `g` (sector bitmap entries skipped). */
export function batIndex(g: BatGeometry, guest: number): number {
  const block = Math.floor(guest / g.blockSize);
  return block + Math.floor(block / g.chunkRatio);
}

export function stateOf(e: bigint): number {
  return Number(e & 7n);
}

export function offsetOf(e: bigint): number {
  return Number(e & OFFSET_MASK);
}

export function entryFor(offset: number, state: number): bigint {
  // Hyper-V refuses a ZERO (or other non-present) entry with an offset, so QEMU writes none.
  const present = state === STATE.FULLY_PRESENT || state === STATE.PARTIALLY_PRESENT;
  return (present ? BigInt(offset) & OFFSET_MASK : 0n) | BigInt(state & 7);
}

/** States QEMU reads as zeroes. */
export function readsAsZero(state: number): boolean {
  return state === STATE.NOT_PRESENT || state === STATE.UNDEFINED || state === STATE.ZERO || state === STATE.UNMAPPED || state === STATE.UNMAPPED_V095;
}

export interface BatProblem { index: number; message: string }

/**
 * QEMU's vhdx_check_bat_entries: every fully present block must lie inside
 * the file and outside the log and regions. (Its payload counter only
 * advances on present entries; kept, so the same entries are judged.)
 */
export function batProblems(bat: BigUint64Array, g: BatGeometry, virtualSize: number, fileSize: number, regions: RegionMap, limit = Infinity): BatProblem[] {
  const out: BatProblem[] = [];
  let payblocks = g.chunkRatio;
  for (let i = 0; i < g.entries && out.length < limit; i++) {
    if (stateOf(bat[i]) !== STATE.FULLY_PRESENT) continue;
    const offset = offsetOf(bat[i]);
    const left = virtualSize - i * g.blockSize;
    const blockLength = left < 0 ? g.blockSize : Math.min(g.blockSize, left);
    if (offset >= fileSize) {
      out.push({ index: i, message: `VHDX BAT entry ${i} start offset ${offset} points after end of file (${fileSize}). Image has probably been truncated.` });
    } else if (offset + blockLength > fileSize) {
      out.push({ index: i, message: `VHDX BAT entry ${i} end offset ${offset + blockLength - 1} points after end of file (${fileSize}). Image has probably been truncated.` });
    }
    if (payblocks-- > 0) {
      const clash = regions.overlapping(offset, g.blockSize);
      if (clash) out.push({ index: i, message: `VHDX BAT entry ${i} (block at ${offset}..${offset + g.blockSize}) overlaps the ${clash.what} (${clash.offset}..${clash.offset + clash.length})` });
    } else {
      payblocks = g.chunkRatio;
    }
  }
  return out;
}
