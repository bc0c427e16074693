/**
 * parallels: the Parallels / OpenVZ "ploop" expanding disk, as QEMU 7.2 reads and writes it.
 *
 * Header (64 bytes, little endian):
 *
 *   0x00  magic[16]    "WithoutFreeSpace" (BAT in sectors) or "WithouFreSpacExt" (BAT in clusters)
 *   0x10  version u32  2
 *   0x14  heads u32    16 (geometry, informative)
 *   0x18  cylinders u32
 *   0x1c  tracks u32   sectors per cluster
 *   0x20  bat_entries u32
 *   0x24  nb_sectors u64 (the "Ext" magic; the old one uses the low 32 bits only)
 *   0x2c  inuse u32    0x746f6e59 while a writer has the image open
 *   0x30  data_off u32 first data sector (0: right after the BAT)
 *   0x34  flags u32, 0x38 ext_off u64
 *
 * The BAT follows the header: one u32 per guest cluster, 0 = unallocated (reads as
 * zeroes), otherwise the host position in sectors (old magic) or clusters (Ext magic).
 * A new cluster is appended at the end of the data and zero filled.
 */
import { writeZeroesByWriting, checkRange, type BlockStatus, type ImageNode, type ProtocolNode } from '../node.js';
import { BlockError, malformed } from '../errors.js';
import type { CheckResult } from '../../adapters/adapter.js';
import type { FormatDriver } from './driver.js';
import type { ParallelsCreateOptions } from '../types/create-parallels.js';

const MAGIC = 'WithoutFreeSpace';
const MAGIC_EXT = 'WithouFreSpacExt';
const SECTOR = 512;
const HEADER = 64;
const INUSE = 0x746f6e59;
const DEFAULT_CLUSTER = 1 << 20;
/** QEMU's sanity bounds: image at most 2^32 clusters; BAT entries below INT_MAX / 4. */
const MAX_IMAGE_FACTOR = 2 ** 32;
const BAT_MAX = Math.floor(0x7fffffff / 4);
const TRACKS_MAX = Math.floor(0x7fffffff / 513);

interface Header {
  multiplier: number;
  tracks: number;
  batEntries: number;
  sectors: number;
  inuse: number;
  dataOff: number;
}

function parseHeader(h: Buffer): Header {
  if (h.length < HEADER) throw malformed('header', `the file is ${h.length} bytes, shorter than a Parallels header (64)`);
  const magic = h.toString('latin1', 0, 16);
  if (magic !== MAGIC && magic !== MAGIC_EXT) throw malformed('magic', 'Image not in Parallels format (bad magic)', 0);
  const version = h.readUInt32LE(0x10);
  if (version !== 2) throw malformed('version', `Image not in Parallels format (version ${version}, expected 2)`, 0x10);
  const tracks = h.readUInt32LE(0x1c);
  if (tracks === 0) throw malformed('tracks', 'Invalid image: Zero sectors per track (cluster size 0)', 0x1c);
  if (tracks > TRACKS_MAX) throw malformed('tracks', `Invalid image: Too big cluster (${tracks} sectors per track)`, 0x1c);
  const batEntries = h.readUInt32LE(0x20);
  if (batEntries > BAT_MAX) throw malformed('bat_entries', `Catalog too large (${batEntries} BAT entries)`, 0x20);
  const ext = magic === MAGIC_EXT;
  const sectors = ext ? Number(h.readBigUInt64LE(0x24)) : h.readUInt32LE(0x24);
  if (sectors > Number.MAX_SAFE_INTEGER / SECTOR) throw malformed('nb_sectors', `${sectors} sectors is beyond any disk`, 0x24);
  // QEMU 7.2 reads such a disk's tail as zeroes and asserts on a write there: refuse it.
  if (Math.ceil(sectors / tracks) > batEntries) throw malformed('nb_sectors', `${sectors} sectors need ${Math.ceil(sectors / tracks)} clusters, more than the BAT maps (bat_entries ${batEntries})`, 0x24);
  return { multiplier: ext ? tracks : 1, tracks, batEntries, sectors, inuse: h.readUInt32LE(0x2c), dataOff: h.readUInt32LE(0x30) };
}

export class ParallelsImage implements ImageNode {
  readonly driver = 'parallels';
  private readonly cluster: number;
  /** first sector after the data (where the next cluster goes) */
  private dataEnd: number;
  private constructor(
    readonly file: ProtocolNode,
    private readonly h: Header,
    private readonly bat: Uint32Array,
  ) {
    this.cluster = h.tracks * SECTOR;
    const batEnd = Math.ceil((HEADER + 4 * h.batEntries) / SECTOR);
    this.dataEnd = Math.max(h.dataOff || batEnd, batEnd);
    for (const e of bat) if (e) this.dataEnd = Math.max(this.dataEnd, e * h.multiplier + h.tracks);
  }

  static async open(file: ProtocolNode, ctx: { readOnly: boolean; forCheck?: boolean }): Promise<ParallelsImage> {
    const h = parseHeader(await file.read(0, Math.min(HEADER, file.size())));
    const batBytes = 4 * h.batEntries;
    if (HEADER + batBytes > file.size()) throw malformed('bat_entries', `the BAT (${h.batEntries} entries) ends past the end of the file (${file.size()} bytes)`, 0x20);
    const raw = await file.read(HEADER, batBytes);
    const bat = new Uint32Array(h.batEntries);
    for (let i = 0; i < bat.length; i++) bat[i] = raw.readUInt32LE(4 * i);
    if (!ctx.forCheck) {
      if (h.inuse === INUSE && !ctx.readOnly) {
        throw new BlockError('corrupt', 'inuse: parallels: Image was not closed correctly; cannot be opened read/write', { field: 'inuse', offset: 0x2c });
      }
      // A BAT entry must point at a whole cluster past the BAT: otherwise writes would land in metadata.
      // It must start inside the file (clusters are written before the BAT names them),
      // and no two entries may share a cluster (a write to one would change the other).
      // The BAT fits in the file, so `owner` is bounded by the file size.
      const batEndSector = Math.ceil((HEADER + batBytes) / SECTOR);
      const fileSectors = file.size() / SECTOR;
      const owner = new Map<number, number>();
      for (let i = 0; i < bat.length; i++) {
        if (!bat[i]) continue;
        const sector = bat[i] * h.multiplier;
        if (sector < batEndSector) throw malformed('BAT', `entry ${i} points into the header or the BAT (sector ${sector})`, HEADER + 4 * i);
        if (sector >= fileSectors) throw malformed('BAT', `entry ${i} points at sector ${sector}, outside the image (the file has ${Math.ceil(fileSectors)} sectors)`, HEADER + 4 * i);
        const other = owner.get(bat[i]);
        if (other !== undefined) throw malformed('BAT', `entries ${other} and ${i} point at the same cluster (sector ${sector})`, HEADER + 4 * i);
        owner.set(bat[i], i);
      }
    }
    // New clusters go at data_off (or after the last one): a data_off past the end of the
    // file would make the first write extend the file by up to 2 TiB of nothing.
    if (!ctx.readOnly && !ctx.forCheck && h.dataOff * SECTOR > file.size()) {
      throw malformed('data_off', `first data sector ${h.dataOff} is past the end of the file (${file.size()} bytes); cannot be opened read/write`, 0x30);
    }
    const img = new ParallelsImage(file, h, bat);
    if (!ctx.readOnly && !ctx.forCheck) await img.setInuse(INUSE);
    return img;
  }

  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  size(): number { return this.h.sectors * SECTOR; }

  private async setInuse(v: number): Promise<void> {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    await this.file.write(0x2c, b);
    this.h.inuse = v;
  }

  /** host byte offset of guest cluster `c`, or -1 when unallocated */
  private hostOf(c: number): number {
    if (c >= this.bat.length || this.bat[c] === 0) return -1;
    return this.bat[c] * this.h.multiplier * SECTOR;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const c = Math.floor(g / this.cluster);
      const inCl = g - c * this.cluster;
      const n = Math.min(length - pos, this.cluster - inCl);
      const host = this.hostOf(c);
      if (host >= 0) {
        if (this.file.readInto) await this.file.readInto(out, pos, host + inCl, n);
        else (await this.file.read(host + inCl, n)).copy(out, pos);
      }
      pos += n;
    }
    return out;
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    (await this.read(offset, length)).copy(target, at);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    let pos = 0;
    while (pos < data.length) {
      const g = offset + pos;
      const c = Math.floor(g / this.cluster);
      const inCl = g - c * this.cluster;
      const n = Math.min(data.length - pos, this.cluster - inCl);
      if (c >= this.bat.length) throw new BlockError('corrupt', `BAT: guest cluster ${c} is beyond the BAT (${this.bat.length} entries)`, { field: 'bat_entries' });
      let host = this.hostOf(c);
      if (host < 0) {
        // Append a zero-filled cluster, then point the BAT entry at it.
        host = this.dataEnd * SECTOR;
        if (host / SECTOR / this.h.multiplier > 0xffffffff) throw new BlockError('io', 'BAT: the image file is full (BAT entries are 32 bits)', { field: 'BAT' });
        await this.file.writeZeroes(host, this.cluster);
        this.bat[c] = host / SECTOR / this.h.multiplier;
        this.dataEnd += this.h.tracks;
        const e = Buffer.alloc(4);
        e.writeUInt32LE(this.bat[c]);
        await this.file.write(HEADER + 4 * c, e);
      }
      await this.file.write(host + inCl, data.subarray(pos, pos + n));
      pos += n;
    }
  }

  /** No zero flag in the BAT: zeroes are written (allocating), as QEMU's fallback does. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    return writeZeroesByWriting(this, offset, length);
  }

  /** QEMU 7.2's parallels driver has no discard; the hint is ignored. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  flush(): Promise<void> { return this.file.flush(); }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const end = Math.min(this.size(), offset + length);
    const c0 = Math.floor(offset / this.cluster);
    const h0 = this.hostOf(c0);
    let stop = Math.min(end, (c0 + 1) * this.cluster);
    // Runs of unallocated clusters, or of clusters contiguous on the host, are one extent.
    while (stop < end) {
      const c = stop / this.cluster;
      const h = this.hostOf(c);
      if (h0 < 0 ? h >= 0 : h !== h0 + (c - c0) * this.cluster) break;
      stop = Math.min(end, stop + this.cluster);
    }
    if (h0 < 0) return { offset, length: stop - offset, data: false, zero: true, present: false, depth: 0 };
    return { offset, length: stop - offset, data: true, zero: false, present: true, depth: 0, hostOffset: h0 + (offset - c0 * this.cluster) };
  }

  /** qemu-img check: in-use flag, clusters outside the file, leaked space at the end. */
  async check(opts: { repair?: 'leaks' | 'all'; log?: (line: string) => void }): Promise<CheckResult> {
    const log = opts.log ?? (() => undefined);
    let corruptions = 0;
    let corruptionsFixed = 0;
    let leaks = 0;
    let leaksFixed = 0;
    if (this.h.inuse === INUSE) {
      log(`${opts.repair === 'all' ? 'Repairing' : 'ERROR'} image was not closed correctly`);
      if (opts.repair === 'all') { await this.setInuse(0); corruptionsFixed++; } else corruptions++;
    }
    const fileSize = this.file.size();
    let allocated = 0;
    let highEnd = Math.ceil((HEADER + 4 * this.bat.length) / SECTOR) * SECTOR;
    highEnd = Math.max(highEnd, (this.h.dataOff || 0) * SECTOR);
    for (let i = 0; i < this.bat.length; i++) {
      const host = this.hostOf(i);
      if (host < 0) continue;
      if (host + this.cluster > fileSize) {
        // Repair forgets the cluster (the entry reads as zeroes again), as QEMU does.
        log(`${opts.repair === 'all' ? 'Repairing' : 'ERROR'} cluster ${i} is outside image`);
        if (opts.repair === 'all') {
          this.bat[i] = 0;
          await this.file.write(HEADER + 4 * i, Buffer.alloc(4));
          corruptionsFixed++;
        } else corruptions++;
        continue;
      }
      allocated++;
      highEnd = Math.max(highEnd, host + this.cluster);
    }
    if (fileSize > highEnd) {
      const count = Math.ceil((fileSize - highEnd) / this.cluster);
      log(`${opts.repair ? 'Repairing' : 'ERROR'} space leaked at the end of the image ${fileSize - highEnd}`);
      if (opts.repair) { await this.file.truncate(highEnd); leaksFixed += count; } else leaks += count;
    }
    const out: CheckResult = { 'check-errors': 0, exitCode: 0 };
    const put = (k: keyof CheckResult, v: number) => { if (v) (out as unknown as Record<string, number>)[k] = v; };
    put('image-end-offset', highEnd);
    put('corruptions', corruptions);
    put('leaks', leaks);
    put('corruptions-fixed', corruptionsFixed);
    put('leaks-fixed', leaksFixed);
    put('total-clusters', this.bat.length);
    put('allocated-clusters', allocated);
    out.exitCode = corruptions ? 2 : leaks ? 3 : 0;
    return out;
  }

  async close(): Promise<void> {
    if (!this.readOnly && this.h.inuse === INUSE) {
      // A clean close: the file ends with the data, and the in-use mark goes.
      if (this.file.size() > this.dataEnd * SECTOR) await this.file.truncate(this.dataEnd * SECTOR);
      await this.setInuse(0);
    }
    return this.file.close();
  }
}

/** Creation, byte for byte as qemu-img 7.2 writes it. */
async function createParallels(file: ProtocolNode, opts: ParallelsCreateOptions): Promise<void> {
  const size = opts.size ?? 0;
  const cl = opts.cluster_size ?? DEFAULT_CLUSTER;
  if (size >= MAX_IMAGE_FACTOR * cl) {
    throw new BlockError('option-conflict', `size: Image size is too large for this cluster size (size ${size} needs fewer than 2^32 clusters of cluster_size ${cl})`, { option: 'size', value: size });
  }
  const batEntries = Math.ceil(size / cl);
  if (batEntries > BAT_MAX) {
    throw new BlockError('option-conflict', `size: Catalog too large: ${batEntries} clusters of cluster_size ${cl} (at most ${BAT_MAX})`, { option: 'size', value: size });
  }
  const dataSectors = (Math.ceil((HEADER + 4 * batEntries) / cl) * cl) / SECTOR;
  const h = Buffer.alloc(SECTOR);
  h.write(MAGIC_EXT, 0, 'latin1');
  h.writeUInt32LE(2, 0x10);
  h.writeUInt32LE(16, 0x14);
  h.writeUInt32LE(Math.floor(size / SECTOR / (16 * 32)), 0x18);
  h.writeUInt32LE(cl / SECTOR, 0x1c);
  h.writeUInt32LE(batEntries, 0x20);
  h.writeBigUInt64LE(BigInt(size / SECTOR), 0x24);
  h.writeUInt32LE(dataSectors, 0x30);
  await file.write(0, h);
  // The BAT is all zeroes: a sparse tail of that length is the same bytes.
  await file.truncate(dataSectors * SECTOR, 'off');
}

export const parallelsDriver: FormatDriver = {
  name: 'parallels',
  probe: (head) => {
    if (head.length < HEADER) return 0;
    const m = head.toString('latin1', 0, 16);
    return (m === MAGIC || m === MAGIC_EXT) && head.readUInt32LE(0x10) === 2 ? 100 : 0;
  },
  create: (file, options) => createParallels(file, options as ParallelsCreateOptions),
  async open(file, ctx) {
    return ParallelsImage.open(file, ctx);
  },
  createOptionKeys: ['size', 'cluster_size', 'preallocation', 'nocow', 'extent_size_hint'],
};
