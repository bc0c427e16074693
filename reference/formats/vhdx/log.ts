/**
 * The VHDX metadata log: a circular buffer of 4 KiB sectors at log_offset.
 * An entry is a 64-byte header ("loge", CRC-32C over the whole entry, length,
 * tail, sequence number, descriptor count, the header's log GUID, flushed and
 * last file offsets) followed by descriptors ("desc": 4 KiB of data whose first
 * 8 and last 4 bytes sit in the descriptor and the rest in a "data" sector;
 * "zero": a range to zero), then the data sectors.
 *
 * QEMU writes every BAT change as one log entry and replays it at once; a log
 * GUID in the current header means entries may be waiting. On open, a valid
 * sequence of entries is replayed (read-write) or the open is refused
 * (read-only), as the spec asks.
 */
import { BlockError, malformed } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import { crc32cUpdate } from './crc32c.js';
import { HEADER_SECTION_END, LOG_DESC as D, LOG_DESC_SIZE, LOG_HDR as H, LOG_HDR_SIZE, LOG_SECTOR, MiB, SIG, ZERO_GUID, descriptorSectors, newGuid } from './layout.js';
import type { Headers } from './headers.js';

export interface LogState {
  /** orders earlier writes before later ones (a no-op with cache=unsafe, as in QEMU) */
  sync: () => Promise<void>;
  offset: number;
  length: number;
  /** byte index in the log of the next sector to read / write */
  read: number;
  write: number;
  sequence: bigint;
  tail: number;
}

interface EntryHeader {
  entryLength: number;
  tail: number;
  sequence: bigint;
  descriptorCount: number;
  logGuid: Buffer;
  flushedFileOffset: number;
  lastFileOffset: number;
  checksum: number;
}

export interface Descriptor {
  kind: 'desc' | 'zero';
  fileOffset: number;
  sequence: bigint;
  /** desc: bytes 0..7 and 4092..4095 of the sector; zero: the length */
  leading: Buffer;
  trailing: Buffer;
  zeroLength: number;
}

/** A valid run of entries found in the log: where it starts and ends, and how many. */
export interface LogSequence { read: number; write: number; count: number; firstSequence: bigint }

const next = (log: LogState, idx: number): number => (idx + LOG_SECTOR >= log.length ? 0 : idx + LOG_SECTOR);

async function sector(file: ProtocolNode, log: LogState, idx: number): Promise<Buffer> {
  const b = Buffer.alloc(LOG_SECTOR);
  const at = log.offset + idx;
  if (at < file.size()) (await file.read(at, Math.min(LOG_SECTOR, file.size() - at))).copy(b);
  return b;
}

function parseEntryHeader(b: Buffer): EntryHeader | null {
  if (b.toString('latin1', 0, 4) !== SIG.logEntry) return null;
  return {
    checksum: b.readUInt32LE(H.checksum),
    entryLength: b.readUInt32LE(H.entryLength),
    tail: b.readUInt32LE(H.tail),
    sequence: b.readBigUInt64LE(H.sequence),
    descriptorCount: b.readUInt32LE(H.descriptorCount),
    logGuid: Buffer.from(b.subarray(H.logGuid, H.logGuid + 16)),
    flushedFileOffset: Number(b.readBigUInt64LE(H.flushedFileOffset)),
    lastFileOffset: Number(b.readBigUInt64LE(H.lastFileOffset)),
  };
}

function headerValid(h: EntryHeader | null, log: LogState, logGuid: Buffer): h is EntryHeader {
  return h !== null && h.entryLength <= log.length && h.entryLength % LOG_SECTOR === 0 && h.sequence !== 0n
    && h.logGuid.equals(logGuid) && h.descriptorCount * LOG_DESC_SIZE <= h.entryLength;
}

function parseDescriptor(b: Buffer, at: number): Descriptor {
  const sig = b.toString('latin1', at, at + 4);
  return {
    kind: sig === SIG.zero ? 'zero' : 'desc',
    fileOffset: Number(b.readBigUInt64LE(at + D.fileOffset)),
    sequence: b.readBigUInt64LE(at + D.sequence),
    leading: Buffer.from(b.subarray(at + D.leading, at + D.leading + 8)),
    trailing: Buffer.from(b.subarray(at + D.trailing, at + D.trailing + 4)),
    zeroLength: Number(b.readBigUInt64LE(at + D.zeroLength)),
    ...(sig !== SIG.zero && sig !== SIG.desc ? { bad: sig } : {}),
  } as Descriptor;
}

interface ReadEntry { header: EntryHeader; descriptors: Descriptor[]; data: Buffer[]; crcOk: boolean }

/**
 * Reads the entry at `idx` (advancing the cursor as QEMU does). Returns null
 * (cursor one sector on) for a header QEMU would not accept; throws for a
 * valid header whose descriptors are not valid, which makes QEMU refuse the open.
 */
async function readEntry(file: ProtocolNode, log: LogState, cursor: { idx: number }, logGuid: Buffer, prevSeq: bigint, keepData: boolean): Promise<ReadEntry | null> {
  const first = await sector(file, log, cursor.idx);
  const header = parseEntryHeader(first);
  if (!headerValid(header, log, logGuid) || (prevSeq > 0n && header.sequence !== prevSeq + 1n)) {
    cursor.idx = next(log, cursor.idx);
    return null;
  }
  const descSectors = descriptorSectors(header.descriptorCount);
  const totalSectors = header.entryLength / LOG_SECTOR;
  const descriptors: Descriptor[] = [];
  let crc = 0xffffffff;
  for (let s = 0; s < descSectors; s++) {
    const b = s === 0 ? first : await sector(file, log, cursor.idx);
    cursor.idx = next(log, cursor.idx);
    if (s === 0) {
      crc = crc32cUpdate(crc, b, 0, H.checksum);
      crc = crc32cUpdate(crc, new Uint8Array(4));
      crc = crc32cUpdate(crc, b, H.checksum + 4);
    } else crc = crc32cUpdate(crc, b);
    const from = s === 0 ? LOG_HDR_SIZE : 0;
    for (let at = from; at < LOG_SECTOR && descriptors.length < header.descriptorCount; at += LOG_DESC_SIZE) {
      const d = parseDescriptor(b, at);
      const bad = (d as Descriptor & { bad?: string }).bad;
      if (bad !== undefined || d.sequence !== header.sequence || d.fileOffset % LOG_SECTOR || (d.kind === 'zero' && d.zeroLength % LOG_SECTOR)) {
        throw malformed('log', `log entry ${header.sequence} has an invalid descriptor ${descriptors.length} (${bad !== undefined ? `signature ${JSON.stringify(bad)}` : 'sequence number, offset or length'})`, log.offset + cursor.idx);
      }
      descriptors.push(d);
    }
  }
  const data: Buffer[] = [];
  for (let s = descSectors; s < totalSectors; s++) {
    const b = await sector(file, log, cursor.idx);
    cursor.idx = next(log, cursor.idx);
    crc = crc32cUpdate(crc, b);
    if (keepData) data.push(b);
  }
  return { header, descriptors, data, crcOk: (~crc >>> 0) === header.checksum };
}

/** QEMU's vhdx_log_search: the valid sequence with the highest first sequence number. */
export async function findSequence(file: ProtocolNode, log: LogState, logGuid: Buffer): Promise<LogSequence | null> {
  const cursor = { idx: 0 };
  let best: LogSequence | null = null;
  for (;;) {
    const tail = cursor.idx;
    const e = await readEntry(file, log, cursor, logGuid, 0n, false);
    if (e && e.crcOk) {
      const run: LogSequence = { read: tail, write: cursor.idx, count: 1, firstSequence: e.header.sequence };
      // QEMU checks continuity only from the second entry on (its counter starts at 0).
      let prev = 0n;
      for (;;) {
        const n = await readEntry(file, log, cursor, logGuid, prev, false);
        if (!n || !n.crcOk) break;
        run.write = cursor.idx;
        run.count++;
        prev = n.header.sequence;
      }
      if (!best || run.firstSequence > best.firstSequence) best = run;
    }
    if (cursor.idx < tail) break;
  }
  return best;
}

/**
 * Replays a sequence: every descriptor's 4 KiB (or zeroes) is written at its
 * file offset. The whole sequence is read and checked first, and descriptors
 * aimed at the header section or the log itself are refused, so a hostile log
 * changes nothing. `beforeWriting` runs once everything checked out.
 */
export async function replaySequence(file: ProtocolNode, log: LogState, seq: LogSequence, logGuid: Buffer, beforeWriting?: () => Promise<void>): Promise<void> {
  const cursor = { idx: seq.read };
  const writes: Array<{ at: number; data: Buffer } | { at: number; zero: number }> = [];
  let extendTo = 0;
  for (let i = 0; i < seq.count; i++) {
    const e = await readEntry(file, log, cursor, logGuid, 0n, true);
    if (!e || !e.crcOk) throw malformed('log', `log entry ${i} of the sequence changed while it was replayed`, log.offset + cursor.idx);
    if (e.header.flushedFileOffset > file.size()) {
      throw malformed('log', `log entry ${e.header.sequence} says the file was ${e.header.flushedFileOffset} bytes when it was written, but it is ${file.size()}: the image was truncated`, log.offset);
    }
    let dataIdx = 0;
    for (const d of e.descriptors) {
      const len = d.kind === 'zero' ? d.zeroLength : LOG_SECTOR;
      if (d.fileOffset < HEADER_SECTION_END || (d.fileOffset < log.offset + log.length && d.fileOffset + len > log.offset)) {
        throw malformed('log', `log entry ${e.header.sequence} would write ${len} bytes at ${d.fileOffset}, inside the ${d.fileOffset < HEADER_SECTION_END ? 'header section' : 'log'}`, log.offset);
      }
      if (d.kind === 'zero') {
        writes.push({ at: d.fileOffset, zero: d.zeroLength });
        continue;
      }
      const s = e.data[dataIdx++];
      if (!s || s.toString('latin1', 0, 4) !== SIG.data) throw malformed('log', `log entry ${e.header.sequence}: descriptor ${dataIdx - 1} has no data sector`, log.offset);
      const sseq = (BigInt(s.readUInt32LE(4)) << 32n) | BigInt(s.readUInt32LE(LOG_SECTOR - 4));
      if (sseq !== d.sequence) throw malformed('log', `log entry ${e.header.sequence}: a data sector has sequence number ${sseq}`, log.offset);
      const out = Buffer.alloc(LOG_SECTOR);
      d.leading.copy(out, 0);
      s.copy(out, 8, 8, LOG_SECTOR - 4);
      d.trailing.copy(out, LOG_SECTOR - 4);
      writes.push({ at: d.fileOffset, data: out });
    }
    if (e.header.lastFileOffset > extendTo) extendTo = e.header.lastFileOffset;
  }
  if (beforeWriting) await beforeWriting();
  for (const w of writes) {
    if ('data' in w) await file.write(w.at, w.data);
    else {
      const z = Buffer.alloc(Math.min(w.zero, MiB));
      for (let p = 0; p < w.zero; p += z.length) await file.write(w.at + p, z.subarray(0, Math.min(z.length, w.zero - p)));
    }
  }
  // QEMU grows the file to the last entry's last_file_offset, in whole MiB, when it is unaligned.
  if (file.size() < extendTo && extendTo % MiB) await file.truncate(Math.ceil(extendTo / MiB) * MiB, 'off');
  await log.sync();
}

/**
 * QEMU's vhdx_log_write_and_flush for `data` at file offset `offset`: a new
 * log GUID in both headers, one entry with the whole 4 KiB sectors the bytes
 * fall in (merged with what the file holds), the entry replayed, then the log
 * GUID cleared again in both headers.
 */
export async function logWriteAndFlush(file: ProtocolNode, log: LogState, headers: Headers, data: Buffer, offset: number, opts: { crashAfterEntry?: boolean } = {}): Promise<void> {
  if (data.length > headers.active.logLength) throw new BlockError('unsupported', 'log: the update is larger than the log', { field: 'log_length' });
  if (!headers.active.logGuid.equals(ZERO_GUID)) throw new BlockError('unsupported', 'log: the log still holds entries (QEMU flushes after every write)', { field: 'log_guid' });
  const logGuid = newGuid();
  await headers.update(file, { newDataGuid: false, logGuid });
  if (log.sequence === 0n) log.sequence = 1n;
  const first = Math.floor(offset / LOG_SECTOR) * LOG_SECTOR;
  const last = Math.floor((offset + data.length - 1) / LOG_SECTOR) * LOG_SECTOR;
  const count = (last - first) / LOG_SECTOR + 1;
  const descSectors = descriptorSectors(count);
  const entry = Buffer.alloc((descSectors + count) * LOG_SECTOR);
  const fileLength = file.size();
  entry.write(SIG.logEntry, H.signature, 'latin1');
  entry.writeUInt32LE(entry.length, H.entryLength);
  entry.writeUInt32LE(log.tail, H.tail);
  entry.writeBigUInt64LE(log.sequence, H.sequence);
  entry.writeUInt32LE(count, H.descriptorCount);
  logGuid.copy(entry, H.logGuid);
  entry.writeBigUInt64LE(BigInt(fileLength), H.flushedFileOffset);
  entry.writeBigUInt64LE(BigInt(fileLength), H.lastFileOffset);
  for (let i = 0; i < count; i++) {
    const at = first + i * LOG_SECTOR;
    const merged = Buffer.alloc(LOG_SECTOR);
    if (at < fileLength) (await file.read(at, Math.min(LOG_SECTOR, fileLength - at))).copy(merged);
    const from = Math.max(offset, at);
    const to = Math.min(offset + data.length, at + LOG_SECTOR);
    data.copy(merged, from - at, from - offset, to - offset);
    const descAt = LOG_HDR_SIZE + i * LOG_DESC_SIZE;
    entry.write(SIG.desc, descAt + D.signature, 'latin1');
    merged.copy(entry, descAt + D.trailing, LOG_SECTOR - 4, LOG_SECTOR);
    merged.copy(entry, descAt + D.leading, 0, 8);
    entry.writeBigUInt64LE(BigInt(at), descAt + D.fileOffset);
    entry.writeBigUInt64LE(log.sequence, descAt + D.sequence);
    const s = (descSectors + i) * LOG_SECTOR;
    entry.write(SIG.data, s, 'latin1');
    entry.writeUInt32LE(Number(log.sequence >> 32n) >>> 0, s + 4);
    merged.copy(entry, s + 8, 8, LOG_SECTOR - 4);
    entry.writeUInt32LE(Number(log.sequence & 0xffffffffn), s + LOG_SECTOR - 4);
  }
  let crc = crc32cUpdate(0xffffffff, entry);
  crc = ~crc >>> 0;
  entry.writeUInt32LE(crc, H.checksum);
  const start = log.write;
  for (let s = 0; s < entry.length / LOG_SECTOR; s++) {
    await file.write(log.offset + log.write, entry.subarray(s * LOG_SECTOR, (s + 1) * LOG_SECTOR));
    log.write = next(log, log.write);
  }
  log.sequence++;
  log.tail = log.write;
  await log.sync();
  if (opts.crashAfterEntry) return;
  await replaySequence(file, log, { read: start, write: log.write, count: 1, firstSequence: log.sequence - 1n }, logGuid);
  log.read = log.write;
  await headers.update(file, { newDataGuid: false, logGuid: ZERO_GUID });
}
