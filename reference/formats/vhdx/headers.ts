/**
 * The two VHDX headers: which one is current, and QEMU's update procedure
 * (the spec's): the non-current header gets the next sequence number, the
 * session's file write GUID (and a new data write GUID before guest-visible
 * changes, or a new log GUID), and becomes current. QEMU always updates twice,
 * so both headers end up valid and equal but for the sequence number.
 */
import { BlockError, malformed } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import { crc32cWithHole } from './crc32c.js';
import { HEADER_CRC_SIZE, HEADER_FIELDS as F, HEADER_OFFSETS, HEADER_STRUCT_SIZE, SIG, decodeHeader, newGuid, type Header } from './layout.js';

export interface HeaderSlot {
  /** the 80 header bytes as read (QEMU keeps an invalid header's bytes as they are) */
  raw: Buffer;
  valid: boolean;
}

export class Headers {
  private constructor(
    readonly slots: [HeaderSlot, HeaderSlot],
    public current: 0 | 1,
    /** file_write_guid of every header this open writes */
    readonly sessionGuid: Buffer,
  ) {}

  get active(): Header { return decodeHeader(this.slots[this.current].raw); }

  static async read(file: ProtocolNode): Promise<Headers> {
    const slots: HeaderSlot[] = [];
    for (const at of HEADER_OFFSETS) {
      const block = await file.read(at, HEADER_CRC_SIZE);
      const stored = block.readUInt32LE(F.checksum);
      const valid = block.length === HEADER_CRC_SIZE && crc32cWithHole(block, F.checksum) === stored
        && block.toString('latin1', 0, 4) === SIG.header && block.readUInt16LE(F.version) === 1;
      slots.push({ raw: Buffer.from(block.subarray(0, HEADER_STRUCT_SIZE)), valid });
    }
    const [a, b] = slots;
    let current: 0 | 1;
    if (a.valid && !b.valid) current = 0;
    else if (!a.valid && b.valid) current = 1;
    else if (!a.valid && !b.valid) {
      throw new BlockError('malformed', 'header: No valid VHDX header found (both headers fail their CRC-32C, signature or version check)', { field: 'header', offset: HEADER_OFFSETS[0] });
    } else {
      const sa = a.raw.readBigUInt64LE(F.sequence);
      const sb = b.raw.readBigUInt64LE(F.sequence);
      if (sa > sb) current = 0;
      else if (sb > sa) current = 1;
      // Disk2VHD writes two identical headers; equal numbers otherwise mean no valid header.
      else if (a.raw.equals(b.raw)) current = 0;
      else throw malformed('sequence_number', `No valid VHDX header found: both headers have sequence number ${sa} but differ`, HEADER_OFFSETS[0] + F.sequence);
    }
    return new Headers([a, b], current, newGuid());
  }

  /** One update of the non-current header, which becomes current. */
  async updateOne(file: ProtocolNode, opts: { newDataGuid: boolean; logGuid?: Buffer }): Promise<void> {
    const other = (1 - this.current) as 0 | 1;
    const h = this.slots[other].raw;
    const seq = this.slots[this.current].raw.readBigUInt64LE(F.sequence) + 1n;
    h.writeBigUInt64LE(seq & 0xffffffffffffffffn, F.sequence);
    this.sessionGuid.copy(h, F.fileWriteGuid);
    if (opts.newDataGuid) newGuid().copy(h, F.dataWriteGuid);
    if (opts.logGuid) opts.logGuid.copy(h, F.logGuid);
    // The checksum covers the whole 4 KiB; QEMU reads what is there and writes the 80 bytes back.
    const at = HEADER_OFFSETS[other];
    const block = Buffer.alloc(HEADER_CRC_SIZE);
    (await file.read(at, HEADER_CRC_SIZE)).copy(block);
    h.copy(block, 0);
    block.writeUInt32LE(0, F.checksum);
    block.writeUInt32LE(crc32cWithHole(block, F.checksum), F.checksum);
    block.copy(h, 0, 0, HEADER_STRUCT_SIZE);
    await file.write(at, block.subarray(0, HEADER_STRUCT_SIZE));
    this.slots[other].valid = true;
    this.current = other;
  }

  async update(file: ProtocolNode, opts: { newDataGuid: boolean; logGuid?: Buffer }): Promise<void> {
    await this.updateOne(file, opts);
    await this.updateOne(file, opts);
  }
}
