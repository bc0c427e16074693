/**
 * An open vmdk disk: its descriptor (embedded in a monolithic sparse or
 * stream-optimized extent at 0x200, or a file of its own) and its extents,
 * with guest I/O as QEMU 7.2's vmdk driver does it:
 *
 * - a first write to a sparse grain allocates the whole grain at the end of
 *   the extent file (the rest of the grain copied from the backing file, or
 *   zeroes) and then enters it in both grain tables;
 * - stream-optimized extents only take whole grains that were never written
 *   (QEMU refuses rewriting a compressed grain and partial grains);
 * - zero writes mark whole grains zero (GTE 1) when the extent has the
 *   zeroed-grain flag, and otherwise write zeroes; discard is ignored;
 * - the first write of each open gives the disk a new CID;
 * - reads of unallocated grains fall through to the backing file only while
 *   the parentCID still matches the base's CID.
 */
import { randomInt } from 'node:crypto';
import { BlockError, malformed } from '../../errors.js';
import { checkRange, type BlockNode, type BlockStatus, type ImageNode, type ProtocolNode } from '../../node.js';
import type { OpenContext } from '../driver.js';
import type { CheckResult } from '../../../adapters/adapter.js';
import { backingStatus } from '../backing-read.js';
import { DESC_SIZE, DESCRIPTOR_FILE_TYPES, descriptorText, parseCids, parseDescriptor, parseExtentLines, withNewCid } from './descriptor.js';
import { openListedExtents, openSparseFile, readDescriptorFile, type Extent } from './extents.js';
import { KDMV, COWD, SECTOR, parseKdmv } from './sparse.js';

/** The CID the reference gives a disk: random, always 8 hex digits (QEMU's may have fewer). */
export function newCid(): number {
  return randomInt(0x10000000, 0x100000000);
}

export class VmdkImage implements ImageNode {
  readonly driver = 'vmdk';
  readonly dirty = false;
  backing?: BlockNode | null;
  private cidUpdated = false;
  private cidChecked = false;

  private constructor(
    readonly file: ProtocolNode,
    private readonly extents: Extent[],
    private readonly descOffset: number,
    readonly createType: string,
    public cid: number,
    readonly parentCid: number,
    readonly backingFile: string | undefined,
    private readonly readOnlyOpen: boolean,
  ) {}

  static async open(file: ProtocolNode, ctx: OpenContext): Promise<VmdkImage> {
    if (file.size() < 4) throw malformed('magic', 'vmdk: File is too small, not a valid image');
    const head = Buffer.alloc(512);
    (await file.read(0, Math.min(512, file.size()))).copy(head);
    const magic = head.readUInt32BE(0);
    const readOnly = ctx.readOnly;
    let extents: Extent[];
    let descOffset: number;
    let createType: string;
    let text: string;
    if (magic === KDMV || magic === COWD) {
      const h = magic === KDMV ? parseKdmv(head) : null;
      if (h && h.capacity === 0 && h.descOffset) {
        // A sparse file that only carries a descriptor naming other extents.
        text = descriptorText(await file.read(h.descOffset * SECTOR, Math.min(DESC_FILE_MAX_BYTES, Math.max(0, file.size() - h.descOffset * SECTOR))));
        ({ extents, createType } = await VmdkImage.fromDescriptor(file, text, readOnly));
      } else {
        const sparse = await openSparseFile(file, readOnly);
        createType = sparse.compressed ? 'streamOptimized' : 'monolithicSparse';
        extents = [{ start: 0, length: sparse.sectors * SECTOR, file, filename: file.filename, type: '', sparse, flatOffset: 0, own: true }];
      }
      // QEMU always looks for the embedded descriptor at 0x200, whatever the header says.
      descOffset = 0x200;
      text = descriptorText(await file.read(descOffset, DESC_SIZE));
    } else {
      text = descriptorText(await readDescriptorFile(file));
      ({ extents, createType } = await VmdkImage.fromDescriptor(file, text, readOnly));
      descOffset = 0;
      text = descriptorText(await file.read(0, Math.min(DESC_SIZE, file.size())));
    }
    try {
      const d = parseHint(text);
      const { cid, parentCid } = parseCids(text);
      return new VmdkImage(file, extents, descOffset, createType, cid, parentCid, d, readOnly);
    } catch (e) {
      for (const x of extents) if (!x.own) await x.file.close().catch(() => undefined);
      throw e;
    }
  }

  private static async fromDescriptor(file: ProtocolNode, text: string, readOnly: boolean): Promise<{ extents: Extent[]; createType: string }> {
    let d;
    try {
      d = parseDescriptor(text);
    } catch (e) {
      if (e instanceof BlockError && e.field === 'createType') throw malformed('createType', 'vmdk: invalid VMDK image descriptor (no createType="...")');
      throw e;
    }
    if (!DESCRIPTOR_FILE_TYPES.includes(d.createType)) {
      throw new BlockError('unsupported', `createType: Unsupported image type '${d.createType}'`, { field: 'createType', value: d.createType });
    }
    if (d.createType === 'seSparse') throw new BlockError('unsupported', 'createType: seSparse images are not supported by the reference yet', { field: 'createType' });
    const extents = await openListedExtents(file, parseExtentLines(text), readOnly);
    return { extents, createType: d.createType };
  }

  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.readOnlyOpen; }
  size(): number {
    const last = this.extents[this.extents.length - 1];
    return last ? last.start + last.length : 0;
  }

  /** qemu-img info's cluster-size: the grain size when every extent is alike and sparse. */
  get clusterSize(): number | undefined {
    const first = this.extents[0];
    if (!first?.sparse) return undefined;
    const same = this.extents.every((e) => e.sparse && e.sparse.compressed === first.sparse!.compressed && e.sparse.grainBytes === first.sparse!.grainBytes);
    return same ? first.sparse.grainBytes : undefined;
  }

  /** QEMU takes the base of a vmdk to be vmdk (vmdk_parent_open). */
  /** qemu-img convert writes a stream-optimized target compressed, a grain at a time. */
  get needsCompressedWrites(): boolean { return this.extents[0]?.sparse?.compressed === true; }

  /** A compressed write (qemu-img convert -c): a plain write, which compresses on compressed extents. */
  writeCompressed(offset: number, data: Buffer): Promise<void> { return this.write(offset, data); }

  get backingFormat(): string | undefined { return this.backingFile === undefined ? undefined : 'vmdk'; }

  formatSpecific(): { type: string; data: Record<string, unknown> } {
    return {
      type: 'vmdk',
      data: {
        cid: this.cid,
        'parent-cid': this.parentCid,
        'create-type': this.createType,
        extents: this.extents.map((e) => {
          const x: Record<string, unknown> = {};
          if (e.sparse?.compressed) x.compressed = true;
          x['virtual-size'] = e.length;
          x.filename = e.filename;
          if (e.sparse) x['cluster-size'] = e.sparse.grainBytes;
          x.format = e.type;
          return x;
        }),
      },
    };
  }

  /** What the host holds for the disk: the descriptor file and every extent file. */
  async allocatedSize(): Promise<number> {
    let n = await this.file.allocatedSize();
    for (const e of this.extents) if (e.file !== this.file) n += await e.file.allocatedSize();
    return n;
  }

  private extentAt(offset: number): Extent {
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.extents[mid].start <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.extents[lo];
  }

  /** QEMU's vmdk_is_cid_valid: the base must be vmdk and its CID the parentCID recorded here. */
  private checkParentCid(): void {
    if (this.cidChecked || !this.backing) return;
    const base = this.backing as Partial<VmdkImage>;
    if (base.driver !== 'vmdk' || base.cid === undefined) {
      throw new BlockError('backing', `parentCID: the backing file of ${this.filename} is not a vmdk image, so it has no CID to match parentCID ${this.parentCid.toString(16)} (Invalid argument)`, { field: 'parentCID' });
    }
    if (base.cid !== this.parentCid) {
      throw new BlockError('backing', `parentCID: ${this.filename} records parentCID ${this.parentCid.toString(16)}, but its base's CID is now ${base.cid.toString(16)}: the base changed after the overlay was made (Invalid argument)`, { field: 'parentCID' });
    }
    this.cidChecked = true;
  }

  private async backingInto(out: Buffer, at: number, offset: number, length: number): Promise<void> {
    if (!this.backing) {
      out.fill(0, at, at + length);
      return;
    }
    this.checkParentCid();
    out.fill(0, at, at + length);
    const avail = Math.max(0, Math.min(length, this.backing.size() - offset));
    if (avail > 0) (await this.backing.read(offset, avail)).copy(out, at);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(out: Buffer, at: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    for (let pos = 0; pos < length;) {
      const g = offset + pos;
      const e = this.extentAt(g);
      const rel = g - e.start;
      if (!e.sparse) {
        const n = Math.min(length - pos, e.start + e.length - g);
        if (e.file.readInto) await e.file.readInto(out, at + pos, e.flatOffset + rel, n);
        else (await e.file.read(e.flatOffset + rel, n)).copy(out, at + pos);
        pos += n;
        continue;
      }
      const gb = e.sparse.grainBytes;
      const inGrain = rel % gb;
      const n = Math.min(length - pos, gb - inGrain, e.start + e.length - g);
      const st = await e.sparse.grain(rel);
      if (st.kind === 'data') await e.sparse.readGrain(st.sector, inGrain, n, out, at + pos);
      else if (st.kind === 'zero') out.fill(0, at + pos, at + pos + n);
      else await this.backingInto(out, at + pos, g, n);
      pos += n;
    }
  }

  private refuseReadOnly(): void {
    if (this.readOnlyOpen) throw new BlockError('read-only', `${this.filename}: opened read-only`);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    this.refuseReadOnly();
    for (let pos = 0; pos < data.length;) {
      const g = offset + pos;
      const e = this.extentAt(g);
      const rel = g - e.start;
      if (!e.sparse) {
        const n = Math.min(data.length - pos, e.start + e.length - g);
        await e.file.write(e.flatOffset + rel, data.subarray(pos, pos + n));
        pos += n;
        await this.updateCid();
        continue;
      }
      const s = e.sparse;
      const gb = s.grainBytes;
      const inGrain = rel % gb;
      const n = Math.min(data.length - pos, gb - inGrain, e.start + e.length - g);
      const piece = data.subarray(pos, pos + n);
      const st = await s.grain(rel);
      if (s.compressed) {
        if (st.kind === 'data') {
          throw new BlockError('io', `${this.filename}: Could not write to allocated cluster for streamOptimized (guest offset ${g}): stream-optimized grains are written once`, { offset: g });
        }
        const grainLen = Math.min(gb, e.length - (rel - inGrain));
        if (inGrain !== 0 || (n < gb && rel + n !== e.length)) {
          throw new BlockError('unsupported', `${this.filename}: streamOptimized extents take whole grains only (${gb} bytes at a multiple of ${gb}); ${n} bytes at guest offset ${g} is not one (Invalid argument)`, { offset: g });
        }
        const cow = await this.grainBase(g - inGrain, gb, st.kind === 'zero');
        await s.writeCompressed(rel, Math.floor(g / SECTOR), piece, cow);
        void grainLen;
      } else if (st.kind === 'data') {
        await s.file.write(st.sector * SECTOR + inGrain, piece);
      } else {
        const grain = await this.grainBase(g - inGrain, gb, st.kind === 'zero');
        piece.copy(grain, inGrain);
        await s.allocate(rel, grain);
      }
      pos += n;
      await this.updateCid();
    }
  }

  /** What a new grain starts as: the backing file's bytes (unless the grain was zeroed here), or zeroes. */
  private async grainBase(guestStart: number, gb: number, zeroed: boolean): Promise<Buffer> {
    const grain = Buffer.alloc(gb);
    if (this.backing && !zeroed) await this.backingInto(grain, 0, guestStart, gb);
    return grain;
  }

  /** The first write of an open gives the disk a new CID (QEMU's vmdk_write_cid). */
  private async updateCid(): Promise<void> {
    if (this.cidUpdated) return;
    this.cidUpdated = true;
    const cid = newCid();
    const len = this.descOffset ? DESC_SIZE : Math.min(DESC_SIZE, this.file.size());
    const old = Buffer.alloc(DESC_SIZE);
    (await this.file.read(this.descOffset, len)).copy(old);
    const next = withNewCid(old, cid);
    if (this.descOffset) {
      await this.file.write(this.descOffset, next);
    } else {
      // A descriptor file is written back in whole sectors (what QEMU 7.2 leaves).
      const textLen = descriptorText(next).length;
      const n = Math.min(DESC_SIZE, Math.ceil((textLen + 1) / SECTOR) * SECTOR);
      await this.file.write(0, next.subarray(0, n));
    }
    this.cid = cid;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    this.refuseReadOnly();
    // QEMU's generic layer: the head and tail that are not whole grains are written as zeroes,
    // the grain-aligned middle goes to the driver, which marks zeroed grains or declines.
    const align = Math.max(0, ...this.extents.map((e) => e.sparse?.grainBytes ?? 0));
    if (!align) return this.writeZeroData(offset, length);
    const end = offset + length;
    const bodyStart = Math.min(end, Math.ceil(offset / align) * align);
    const bodyEnd = Math.max(bodyStart, Math.floor(end / align) * align);
    if (bodyStart > offset) await this.writeZeroData(offset, bodyStart - offset);
    if (bodyEnd > bodyStart) {
      if (await this.zeroGrains(bodyStart, bodyEnd, true)) await this.zeroGrains(bodyStart, bodyEnd, false);
      else await this.writeZeroData(bodyStart, bodyEnd - bodyStart);
    }
    if (end > bodyEnd) await this.writeZeroData(bodyEnd, end - bodyEnd);
  }

  private async writeZeroData(offset: number, length: number): Promise<void> {
    const chunk = Buffer.alloc(Math.min(length, 1 << 20));
    for (let pos = 0; pos < length; pos += chunk.length) {
      await this.write(offset + pos, chunk.subarray(0, Math.min(chunk.length, length - pos)));
    }
  }

  /** Mark whole grains zero; false when some extent cannot (a dry run first, as QEMU does). */
  private async zeroGrains(start: number, end: number, dryRun: boolean): Promise<boolean> {
    for (let g = start; g < end;) {
      const e = this.extentAt(g);
      const s = e.sparse;
      if (!s || !s.zeroGrain) return false;
      const rel = g - e.start;
      if (rel % s.grainBytes !== 0 || end - g < Math.min(s.grainBytes, e.length - rel)) return false;
      const st = await s.grain(rel);
      if (s.compressed && st.kind === 'data') {
        throw new BlockError('io', `${this.filename}: Could not write to allocated cluster for streamOptimized (guest offset ${g})`, { offset: g });
      }
      if (st.kind === 'no-table') return false;
      if (!dryRun && st.kind !== 'zero') await s.setEntry(rel, 1);
      await this.updateCid();
      g += Math.min(s.grainBytes, e.length - rel);
    }
    return true;
  }

  /** vmdk has no discard in QEMU 7.2: the hint is ignored. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  async flush(): Promise<void> {
    for (const e of this.extents) if (e.file !== this.file) await e.file.flush();
    await this.file.flush();
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const e = this.extentAt(offset);
    const rel = offset - e.start;
    const limit = Math.min(length, e.start + e.length - offset);
    if (!e.sparse) {
      // A flat extent is its file: data, zero or hole as the file says (QEMU recurses into it).
      const f = await e.file.blockStatus(e.flatOffset + rel, limit);
      return { offset, length: Math.min(limit, f.length), data: true, zero: f.zero, present: true, depth: 0, hostOffset: e.flatOffset + rel };
    }
    const s = e.sparse;
    const inGrain = rel % s.grainBytes;
    const n = Math.min(limit, s.grainBytes - inGrain);
    const st = await s.grain(rel);
    if (st.kind === 'data') {
      if (s.compressed) return { offset, length: n, data: true, zero: false, present: true, depth: 0, compressed: true };
      return { offset, length: n, data: true, zero: false, present: true, depth: 0, hostOffset: st.sector * SECTOR + inGrain };
    }
    // runs of alike grains are reported at once (a huge empty disk maps in a few steps)
    if (st.kind === 'zero') return { offset, length: await s.runLength(rel, limit, true), data: false, zero: true, present: true, depth: 0 };
    const run = await s.runLength(rel, limit, false);
    if (this.backing) this.checkParentCid();
    const b = await backingStatus(this.backing, offset, run);
    return { ...b, length: Math.min(b.length, run) };
  }

  /** qemu-img check for vmdk: every allocated grain (and flat extent) must start inside its file. */
  async check(opts: { log?: (line: string) => void }): Promise<CheckResult> {
    // QEMU stops at the first bad grain, and its check then fails as a whole ("Check failed: Invalid argument", exit 1).
    const fail = (msg: string): never => {
      opts.log?.(msg);
      throw new BlockError('corrupt', `${msg.replace(/^ERROR: /, '')}: Check failed: Invalid argument`, { field: 'grain_table' });
    };
    for (const e of this.extents) {
      if (!e.sparse) {
        if (e.flatOffset >= e.file.size()) return fail(`ERROR: cluster offset for sector ${e.start / SECTOR} points after EOF`);
        continue;
      }
      const fileLen = e.file.size();
      let bad: string | null = null;
      try {
        for await (const { offset, state } of e.sparse.allocated()) {
          if (state.kind === 'data' && state.sector * SECTOR >= fileLen) {
            bad = `ERROR: cluster offset for sector ${(e.start + offset) / SECTOR} points after EOF`;
            break;
          }
        }
      } catch (err) {
        if (!(err instanceof BlockError)) throw err;
        bad = `ERROR: could not get cluster_offset in the extent at sector ${e.start / SECTOR}: ${err.message}`;
      }
      if (bad) fail(bad);
    }
    return { 'check-errors': 0, exitCode: 0 };
  }

  async close(): Promise<void> {
    for (const e of this.extents) {
      // QEMU aligns a stream-optimized file's end to a sector once compressed writes are done.
      if (e.sparse?.wroteCompressed && e.file.size() % SECTOR) await e.file.truncate(Math.ceil(e.file.size() / SECTOR) * SECTOR);
      if (e.file !== this.file) await e.file.close();
    }
    await this.file.close();
  }
}

const DESC_FILE_MAX_BYTES = (1 << 20) - 1;

/** parentFileNameHint from the descriptor text, or undefined. */
function parseHint(text: string): string | undefined {
  const at = text.indexOf('parentFileNameHint');
  if (at < 0) return undefined;
  const start = at + 'parentFileNameHint'.length + 2;
  const end = text.indexOf('"', start);
  if (end < 0) throw malformed('parentFileNameHint', 'the parentFileNameHint value has no closing quote');
  if (end - start > 4095) throw malformed('parentFileNameHint', `the parent file name is ${end - start} bytes, more than 4095`);
  return text.slice(start, end);
}
