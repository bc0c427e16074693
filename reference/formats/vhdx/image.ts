/**
 * An open VHDX image: guest reads and writes over the BAT, allocation as
 * QEMU 7.2 does it (a new block at the end of the file, rounded up to 1 MiB,
 * its BAT entry changed through the log), and qemu-img check.
 */
import { BlockError, malformed } from '../../errors.js';
import { checkRange, writeZeroesByWriting, type BlockStatus, type ImageNode, type ProtocolNode } from '../../node.js';
import type { CheckResult } from '../../../adapters/adapter.js';
import type { OpenContext } from '../driver.js';
import { batGeometry, batIndex, batProblems, entryFor, offsetOf, readsAsZero, stateOf, type BatGeometry } from './bat.js';
import { Headers } from './headers.js';
import { HEADER_SECTION_END, MiB, SIG, STATE, ZERO_GUID, roundUp } from './layout.js';
import { findSequence, logWriteAndFlush, replaySequence, type LogState } from './log.js';
import { readMetadata, type Metadata } from './metadata.js';
import { RegionMap, readRegionTable, type Region } from './regions.js';

export class VhdxImage implements ImageNode {
  readonly driver = 'vhdx';
  readonly dirty = false;
  private firstVisibleWrite = true;
  /** test hook: stop after the log entry of the next BAT change is written (a crash before replay) */
  crashBeforeReplay = false;

  private constructor(
    readonly file: ProtocolNode,
    private readonly headers: Headers,
    private readonly log: LogState,
    private readonly meta: Metadata,
    private readonly geometry: BatGeometry,
    private readonly batRegion: Region,
    private readonly bat: BigUint64Array,
    private readonly regions: RegionMap,
    /** the log was replayed when the image was opened (qemu-img check reports it repaired) */
    readonly logReplayed: boolean,
  ) {}

  get clusterSize(): number { return this.meta.blockSize; }
  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  size(): number { return this.meta.virtualSize; }

  static async open(file: ProtocolNode, ctx: OpenContext): Promise<VhdxImage> {
    if (file.size() < HEADER_SECTION_END) throw malformed('header', `the file is ${file.size()} bytes, shorter than the 1 MiB VHDX header section`);
    const sig = await file.read(0, 8);
    if (sig.toString('latin1') !== SIG.file) throw new BlockError('unknown-format', 'signature: not a VHDX file (no "vhdxfile" signature)', { field: 'signature', offset: 0 });
    const headers = await Headers.read(file);
    const h = headers.active;
    const regions = new RegionMap();
    regions.add(h.logOffset, h.logLength, 'log');
    const sync = ctx.cacheUnsafe ? async () => undefined : () => file.flush();
    const log: LogState = { offset: h.logOffset, length: h.logLength, read: 0, write: 0, sequence: 0n, tail: 0, sync };
    if (h.logOffset < MiB || h.logOffset % MiB) throw malformed('log_offset', `log offset ${h.logOffset} is not a multiple of 1 MiB past the header section`, 0);
    if (h.logVersion !== 0) throw malformed('log_version', `log version ${h.logVersion} (only 0 is defined)`);
    let replayed = false;
    if (!h.logGuid.equals(ZERO_GUID) && h.logLength !== 0) {
      if (h.logLength % MiB) throw malformed('log_length', `log length ${h.logLength} is not a multiple of 1 MiB`);
      if (h.logOffset + h.logLength > file.size()) throw malformed('log_length', `the log (${h.logLength} bytes at ${h.logOffset}) ends past the end of the file (${file.size()})`);
      const seq = await findSequence(file, log, h.logGuid);
      if (seq) {
        if (ctx.readOnly) {
          throw new BlockError('read-only', `log: VHDX image file '${file.filename}' opened read-only, but contains a log that needs to be replayed\nTo replay the log, run:\nqemu-img check -r all '${file.filename}'`, { field: 'log' });
        }
        log.sequence = seq.firstSequence + 1n;
        // Like QEMU, the replay is the session's first guest-visible change.
        await replaySequence(file, log, seq, h.logGuid, () => headers.update(file, { newDataGuid: true }));
        await headers.update(file, { newDataGuid: false, logGuid: ZERO_GUID });
        replayed = true;
      }
    }
    const rt = await readRegionTable(file, regions);
    const meta = await readMetadata(file, rt.metadata);
    const geometry = batGeometry(meta.virtualSize, meta.blockSize, meta.logicalSectorSize);
    if (geometry.entries > rt.bat.length / 8) throw malformed('bat', `the BAT region (${rt.bat.length} bytes) is too small for ${geometry.entries} entries`, rt.bat.offset);
    const raw = await file.read(rt.bat.offset, geometry.entries * 8);
    const bat = new BigUint64Array(geometry.entries);
    for (let i = 0; i < geometry.entries; i++) bat[i] = raw.readBigUInt64LE(i * 8);
    const img = new VhdxImage(file, headers, log, meta, geometry, rt.bat, bat, regions, replayed);
    if (replayed) img.firstVisibleWrite = false;
    if (!ctx.forCheck) img.validateBat();
    return img;
  }

  /** QEMU's checks, plus two of the reference's: no block in the header section, no block used twice. */
  private validateBat(): void {
    const problems = batProblems(this.bat, this.geometry, this.meta.virtualSize, this.file.size(), this.regions, 1);
    if (problems.length) throw malformed('bat', problems[0].message, this.batRegion.offset + 8 * problems[0].index);
    const seen = new Map<number, number>();
    for (let i = 0; i < this.bat.length; i++) {
      if (stateOf(this.bat[i]) !== STATE.FULLY_PRESENT) continue;
      const off = offsetOf(this.bat[i]);
      if (off < HEADER_SECTION_END) throw malformed('bat', `VHDX BAT entry ${i} puts a block at ${off}, inside the 1 MiB header section`, this.batRegion.offset + 8 * i);
      const other = seen.get(off);
      if (other !== undefined) throw malformed('bat', `VHDX BAT entries ${other} and ${i} both use the block at ${off}`, this.batRegion.offset + 8 * i);
      seen.set(off, i);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    const bs = this.meta.blockSize;
    for (let pos = 0; pos < length;) {
      const g = offset + pos;
      const n = Math.min(length - pos, bs - (g % bs));
      const e = this.bat[batIndex(this.geometry, g)];
      const state = stateOf(e);
      if (readsAsZero(state)) target.fill(0, at + pos, at + pos + n);
      else if (state === STATE.FULLY_PRESENT) {
        const host = offsetOf(e) + (g % bs);
        if (this.file.readInto) await this.file.readInto(target, at + pos, host, n);
        else (await this.file.read(host, n)).copy(target, at + pos);
      } else {
        throw new BlockError('io', `bat: block ${Math.floor(g / bs)} is in state ${state}, which QEMU cannot read (Input/output error)`, { field: 'bat', offset: g });
      }
      pos += n;
    }
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    // The first guest-visible write of an open gets a new data write GUID in both headers.
    if (this.firstVisibleWrite) {
      this.firstVisibleWrite = false;
      await this.headers.update(this.file, { newDataGuid: true });
    }
    const bs = this.meta.blockSize;
    for (let pos = 0; pos < data.length;) {
      const g = offset + pos;
      const n = Math.min(data.length - pos, bs - (g % bs));
      const idx = batIndex(this.geometry, g);
      const state = stateOf(this.bat[idx]);
      if (state === STATE.FULLY_PRESENT) {
        const host = offsetOf(this.bat[idx]);
        if (host < HEADER_SECTION_END) throw new BlockError('corrupt', `bat: block ${Math.floor(g / bs)} is in the header section (Bad address)`, { field: 'bat' });
        await this.file.write(host + (g % bs), data.subarray(pos, pos + n));
      } else if (readsAsZero(state)) {
        // New block at the end of the file, 1 MiB aligned; the file grows by the block (reads as zeroes).
        const at = roundUp(this.file.size(), MiB);
        await this.file.truncate(at + bs, 'off');
        const before = this.bat[idx];
        this.bat[idx] = entryFor(at, STATE.FULLY_PRESENT);
        try {
          await this.file.write(at + (g % bs), data.subarray(pos, pos + n));
        } catch (e) {
          this.bat[idx] = before;
          throw e;
        }
        const entry = Buffer.alloc(8);
        entry.writeBigUInt64LE(this.bat[idx]);
        await logWriteAndFlush(this.file, this.log, this.headers, entry, this.batRegion.offset + 8 * idx, { crashAfterEntry: this.crashBeforeReplay });
        if (this.crashBeforeReplay) throw new BlockError('io', 'crashed (test hook) after writing the log entry');
      } else {
        throw new BlockError('io', `bat: block ${Math.floor(g / bs)} is in state ${state}, which QEMU cannot write (Input/output error)`, { field: 'bat', offset: g });
      }
      pos += n;
    }
  }

  /** vhdx has no zero writes in QEMU 7.2: its generic fallback writes zeroes (allocating). */
  async writeZeroes(offset: number, length: number): Promise<void> {
    return writeZeroesByWriting(this, offset, length);
  }

  /** No discard in QEMU 7.2's vhdx: the hint is ignored. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  flush(): Promise<void> { return this.file.flush(); }

  /** QEMU 7.2's vhdx reports no block status: the whole disk is data, with no host offsets. */
  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const end = Math.min(this.size(), offset + length);
    return { offset, length: end - offset, data: true, zero: false, present: true, depth: 0 };
  }

  /** qemu-img check: a log replayed on open counts as a repaired corruption; bad BAT entries as corruptions. */
  async check(opts: { repair?: 'leaks' | 'all'; log?: (line: string) => void }): Promise<CheckResult> {
    const problems = batProblems(this.bat, this.geometry, this.meta.virtualSize, this.file.size(), this.regions);
    for (const p of problems) opts.log?.(p.message);
    const out: CheckResult = { 'check-errors': 0, exitCode: problems.length ? 2 : 0 };
    if (problems.length) out.corruptions = problems.length;
    if (this.logReplayed) out['corruptions-fixed'] = 1;
    return out;
  }

  close(): Promise<void> { return this.file.close(); }
}
