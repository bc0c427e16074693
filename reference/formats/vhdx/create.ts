/**
 * Creation, byte for byte as qemu-img 7.2 writes it (GUIDs, the header
 * sequence number and the CRCs over them are random):
 *
 *   file identifier, headers 1 and 2 (sequence n and n+1, no log GUID),
 *   region tables 1 and 2, the log region left empty at 1 MiB, the BAT right
 *   after it, the metadata region after the BAT, and payload blocks from
 *   BAT end + 5 MiB on (every block placed there for a fixed image).
 */
import { randomBytes } from 'node:crypto';
import { BlockError } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import type { VhdxCreateOptions } from '../../types/create-vhdx.js';
import { batGeometry, batIndex, entryFor } from './bat.js';
import { sealCrc } from './crc32c.js';
import {
  CREATOR, GUID, GiB_, HEADER_CRC_SIZE, HEADER_OFFSETS, HEADER_SECTION_END, HEADER_STRUCT_SIZE, MiB, REGION_TABLE_OFFSETS,
  REGION_TABLE_SIZE, SIG, STATE, ZERO_GUID, encodeHeader, newGuid, roundUp,
} from './layout.js';
import { buildMetadata } from './metadata.js';

/** QEMU's automatic block size: bigger disks get bigger blocks (to keep the BAT small). */
export function autoBlockSize(size: number): number {
  if (size > 32 * 1024 * GiB_) return 64 * MiB;
  if (size > 100 * GiB_) return 32 * MiB;
  if (size > GiB_) return 16 * MiB;
  return 8 * MiB;
}

export interface VhdxLayout {
  blockSize: number;
  batOffset: number;
  batLength: number;
  metadataOffset: number;
  dataOffset: number;
}

export function vhdxLayout(size: number, blockSize: number, logSize: number): VhdxLayout {
  const g = batGeometry(size, blockSize);
  const batOffset = roundUp(HEADER_SECTION_END + logSize, MiB);
  const batLength = roundUp(g.entries * 8, MiB);
  const metadataOffset = roundUp(batOffset + batLength, MiB);
  return { blockSize, batOffset, batLength, metadataOffset, dataOffset: batOffset + batLength + 5 * MiB };
}

export async function createVhdx(file: ProtocolNode, opts: VhdxCreateOptions): Promise<void> {
  const size = opts.size ?? 0;
  const logSize = opts.log_size ?? MiB;
  const blockSize = opts.block_size ? opts.block_size : autoBlockSize(size);
  const fixed = opts.subformat === 'fixed';
  const zeroBlocks = opts.block_state_zero !== false;
  if (blockSize % MiB || (blockSize & (blockSize - 1)) !== 0) throw new BlockError('invalid-option', `block_size: ${blockSize} is not a power of two`, { option: 'block_size' });
  const L = vhdxLayout(size, blockSize, logSize);

  // (A) the file identifier
  const id = Buffer.alloc(8 + CREATOR.length * 2);
  id.write(SIG.file, 0, 'latin1');
  id.write(CREATOR, 8, 'utf16le');
  await file.write(0, id);

  // (B, C) two headers; QEMU writes only the 80 defined bytes, the CRC covering 4 KiB of zeroes after them
  const header = {
    sequence: BigInt(randomBytes(4).readUInt32LE(0)),
    fileWriteGuid: newGuid(),
    dataWriteGuid: newGuid(),
    logGuid: ZERO_GUID,
    logVersion: 0,
    version: 1,
    logLength: logSize,
    logOffset: HEADER_SECTION_END,
  };
  for (const at of HEADER_OFFSETS) {
    const block = Buffer.alloc(HEADER_CRC_SIZE);
    encodeHeader(header, block);
    sealCrc(block, 4);
    await file.write(at, block.subarray(0, HEADER_STRUCT_SIZE));
    header.sequence++;
  }

  // (D, E) the region table, twice
  const rt = Buffer.alloc(REGION_TABLE_SIZE);
  rt.write(SIG.region, 0, 'latin1');
  rt.writeUInt32LE(2, 8);
  GUID.bat.copy(rt, 16);
  rt.writeBigUInt64LE(BigInt(L.batOffset), 32);
  rt.writeUInt32LE(L.batLength, 40);
  GUID.metadata.copy(rt, 48);
  rt.writeBigUInt64LE(BigInt(L.metadataOffset), 64);
  rt.writeUInt32LE(MiB, 72);
  sealCrc(rt, 4);

  // (F) the file up to the first payload block (and the blocks of a fixed image), then the BAT
  await file.truncate(fixed ? L.dataOffset + size : L.dataOffset, 'off');
  if (fixed || zeroBlocks) {
    const g = batGeometry(size, blockSize);
    const state = zeroBlocks ? STATE.ZERO : STATE.FULLY_PRESENT;
    const bat = Buffer.alloc(L.batLength);
    for (let guest = 0; guest < size; guest += blockSize) {
      const at = roundUp(L.dataOffset + guest, MiB);
      bat.writeBigUInt64LE(entryFor(at, state), batIndex(g, guest) * 8);
    }
    for (let p = 0; p < bat.length; p += 8 * MiB) await file.write(L.batOffset + p, bat.subarray(p, Math.min(bat.length, p + 8 * MiB)));
  }
  for (const at of REGION_TABLE_OFFSETS) await file.write(at, rt);

  // (H) the metadata table and its items
  const md = buildMetadata({ blockSize, leaveBlocksAllocated: fixed, virtualSize: size, logicalSectorSize: 512, physicalSectorSize: 512 });
  await file.write(L.metadataOffset, md.table);
  await file.write(L.metadataOffset + 64 * 1024, md.items);
}
