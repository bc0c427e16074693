/**
 * vdi: VirtualBox's Virtual Disk Image, version 1.1, as QEMU reads and writes it.
 *
 * Layout (all fields little endian):
 *
 *   0x000  text[64]           free text, QEMU writes "<<< QEMU VM Virtual Disk Image >>>\n"
 *   0x040  signature   u32    0xbeda107f
 *   0x044  version     u32    0x00010001 (1.1)
 *   0x048  header_size u32    0x180 (the header after text, signature and version)
 *   0x04c  image_type  u32    1 dynamic, 2 static (every block allocated at creation)
 *   0x050  image_flags u32
 *   0x054  description[256]
 *   0x154  offset_bmap u32    byte offset of the block map (sector aligned)
 *   0x158  offset_data u32    byte offset of block 0 (sector aligned)
 *   0x15c  cylinders, heads, sectors (u32 each; QEMU writes 0)
 *   0x168  sector_size u32    512
 *   0x170  disk_size   u64    guest size in bytes
 *   0x178  block_size  u32    1 MiB (the only size QEMU accepts)
 *   0x17c  block_extra u32
 *   0x180  blocks_in_image u32, 0x184 blocks_allocated u32
 *   0x188  uuid_image, 0x198 uuid_last_snap, 0x1a8 uuid_link, 0x1b8 uuid_parent (16 bytes each)
 *
 * The block map has one u32 per guest block: the index of the host block
 * (at offset_data + index * block_size), 0xffffffff never allocated,
 * 0xfffffffe discarded; both read as zeroes. A new block is appended after the
 * last allocated one and written whole (zero padding around the guest data).
 */
import { randomBytes } from 'node:crypto';
import { writeZeroesByWriting, checkRange, type BlockStatus, type ImageNode, type ProtocolNode } from '../node.js';
import { BlockError, malformed } from '../errors.js';
import type { CheckResult } from '../../adapters/adapter.js';
import type { FormatDriver } from './driver.js';
import type { VdiCreateOptions } from '../types/create-vdi.js';

export const VDI_SIGNATURE = 0xbeda107f;
const VDI_VERSION = 0x00010001;
const SECTOR = 512;
const BLOCK_SIZE = 1 << 20;
const TYPE_DYNAMIC = 1;
const TYPE_STATIC = 2;
const UNALLOCATED = 0xffffffff;
const DISCARDED = 0xfffffffe;
/** QEMU 7.2's limit: the map must stay below 2 GiB, in whole sectors of entries. */
export const VDI_BLOCKS_MAX = Math.floor(0x7fffffff / 4) & ~(SECTOR / 4 - 1);
export const VDI_DISK_SIZE_MAX = VDI_BLOCKS_MAX * BLOCK_SIZE;
const TEXT = '<<< QEMU VM Virtual Disk Image >>>\n';

const isAllocated = (e: number) => e < DISCARDED;

interface Header {
  imageType: number;
  offsetBmap: number;
  offsetData: number;
  diskSize: number;
  blocksInImage: number;
  blocksAllocated: number;
}

/** A random RFC 4122 version 4 UUID in VirtualBox's byte order (first three groups little endian). */
function newUuid(): Buffer {
  const u = randomBytes(16);
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  u.writeUInt32LE(u.readUInt32BE(0), 0);
  u.writeUInt16LE(u.readUInt16BE(4), 4);
  u.writeUInt16LE(u.readUInt16BE(6), 6);
  return u;
}

function parseHeader(h: Buffer, fileSize: number): Header {
  if (h.length < SECTOR) throw malformed('header', `the file is ${h.length} bytes, shorter than a VDI header (512)`);
  const sig = h.readUInt32LE(0x40);
  if (sig !== VDI_SIGNATURE) throw malformed('signature', `not in VDI format (signature 0x${sig.toString(16)}, expected 0xbeda107f)`, 0x40);
  const version = h.readUInt32LE(0x44);
  if (version !== VDI_VERSION) throw new BlockError('unsupported', `version: unsupported VDI version ${version >>> 16}.${version & 0xffff} (only 1.1)`, { field: 'version', offset: 0x44 });
  const imageType = h.readUInt32LE(0x4c);
  if (imageType !== TYPE_DYNAMIC && imageType !== TYPE_STATIC) throw malformed('image_type', `unknown image type ${imageType} (1 dynamic, 2 static)`, 0x4c);
  const offsetBmap = h.readUInt32LE(0x154);
  const offsetData = h.readUInt32LE(0x158);
  if (offsetBmap % SECTOR) throw malformed('offset_bmap', `block map offset 0x${offsetBmap.toString(16)} is not sector aligned`, 0x154);
  if (offsetData % SECTOR) throw malformed('offset_data', `data offset 0x${offsetData.toString(16)} is not sector aligned`, 0x158);
  const sectorSize = h.readUInt32LE(0x168);
  if (sectorSize !== SECTOR) throw new BlockError('unsupported', `sector_size: sector size ${sectorSize} is not 512`, { field: 'sector_size', offset: 0x168 });
  let diskSize = Number(h.readBigUInt64LE(0x170));
  if (diskSize > VDI_DISK_SIZE_MAX) throw new BlockError('unsupported', `disk_size: disk size ${diskSize} exceeds the maximum ${VDI_DISK_SIZE_MAX}`, { field: 'disk_size', offset: 0x170 });
  // VirtualBox can write odd sizes; QEMU rounds them up to whole sectors.
  diskSize = Math.ceil(diskSize / SECTOR) * SECTOR;
  const blockSize = h.readUInt32LE(0x178);
  if (blockSize !== BLOCK_SIZE) throw new BlockError('unsupported', `block_size: block size ${blockSize} is not 1048576`, { field: 'block_size', offset: 0x178 });
  const blocksInImage = h.readUInt32LE(0x180);
  if (blocksInImage > VDI_BLOCKS_MAX) throw malformed('blocks_in_image', `${blocksInImage} blocks, more than the maximum ${VDI_BLOCKS_MAX}`, 0x180);
  if (diskSize > blocksInImage * BLOCK_SIZE) throw malformed('disk_size', `disk size ${diskSize} but the block map (blocks_in_image ${blocksInImage}) has room for ${blocksInImage * BLOCK_SIZE}`, 0x170);
  if (!h.subarray(0x1a8, 0x1b8).equals(Buffer.alloc(16))) throw new BlockError('unsupported', 'uuid_link: a differencing image (non-null link UUID) is not supported', { field: 'uuid_link', offset: 0x1a8 });
  if (!h.subarray(0x1b8, 0x1c8).equals(Buffer.alloc(16))) throw new BlockError('unsupported', 'uuid_parent: a differencing image (non-null parent UUID) is not supported', { field: 'uuid_parent', offset: 0x1b8 });
  const mapBytes = Math.ceil((blocksInImage * 4) / SECTOR) * SECTOR;
  if (offsetBmap < SECTOR) throw malformed('offset_bmap', `block map offset ${offsetBmap} overlaps the header`, 0x154);
  if (offsetBmap + mapBytes > fileSize) throw malformed('offset_bmap', `the block map (${mapBytes} bytes at ${offsetBmap}) ends past the end of the file (${fileSize})`, 0x154);
  if (mapBytes > 0 && offsetData < offsetBmap + mapBytes && offsetBmap < offsetData + blocksInImage * BLOCK_SIZE) {
    throw malformed('offset_data', `the data area at ${offsetData} overlaps the block map (${offsetBmap}..${offsetBmap + mapBytes})`, 0x158);
  }
  if (offsetData < SECTOR) throw malformed('offset_data', `data offset ${offsetData} overlaps the header`, 0x158);
  return { imageType, offsetBmap, offsetData, diskSize, blocksInImage, blocksAllocated: h.readUInt32LE(0x184) };
}

export class VdiImage implements ImageNode {
  readonly driver = 'vdi';
  readonly clusterSize = BLOCK_SIZE;
  readonly dirty = false;
  private constructor(
    readonly file: ProtocolNode,
    private readonly h: Header,
    private readonly bmap: Uint32Array,
  ) {}

  static async open(file: ProtocolNode, ctx: { forCheck?: boolean }): Promise<VdiImage> {
    const head = await file.read(0, Math.min(SECTOR, file.size()));
    const h = parseHeader(head, file.size());
    const raw = await file.read(h.offsetBmap, h.blocksInImage * 4);
    const bmap = new Uint32Array(h.blocksInImage);
    for (let i = 0; i < bmap.length; i++) bmap[i] = raw.readUInt32LE(i * 4);
    const img = new VdiImage(file, h, bmap);
    // Every allocated entry must name a block the map counts and no other entry uses:
    // otherwise a write to one guest block would change another. qemu-img check still opens it.
    // A block that starts past the end of the file was never written (QEMU writes new
    // blocks whole before it points an entry at them). The map fits in the file, so
    // `seen` is bounded by the file size too.
    if (!ctx.forCheck) {
      const seen = new Uint8Array(h.blocksInImage);
      const fileSize = file.size();
      for (let i = 0; i < bmap.length; i++) {
        const e = bmap[i];
        if (!isAllocated(e)) continue;
        if (e >= h.blocksInImage) throw malformed('block map', `entry ${i} points at block index ${e}, beyond blocks_in_image ${h.blocksInImage}`, h.offsetBmap + 4 * i);
        if (seen[e]) throw malformed('block map', `entry ${i} points at block index ${e}, which another entry uses too (also used)`, h.offsetBmap + 4 * i);
        if (h.offsetData + e * BLOCK_SIZE >= fileSize) throw malformed('block map', `entry ${i} points at block index ${e}, at ${h.offsetData + e * BLOCK_SIZE}, past the end of the file (${fileSize})`, h.offsetBmap + 4 * i);
        seen[e] = 1;
      }
    }
    return img;
  }

  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  size(): number { return this.h.diskSize; }

  private hostOf(block: number): number { return this.h.offsetData + block * BLOCK_SIZE; }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const b = Math.floor(g / BLOCK_SIZE);
      const inBlock = g - b * BLOCK_SIZE;
      const n = Math.min(length - pos, BLOCK_SIZE - inBlock);
      const e = this.bmap[b];
      if (isAllocated(e)) {
        if (this.file.readInto) await this.file.readInto(out, pos, this.hostOf(e) + inBlock, n);
        else (await this.file.read(this.hostOf(e) + inBlock, n)).copy(out, pos);
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
    let headerDirty = false;
    while (pos < data.length) {
      const g = offset + pos;
      const b = Math.floor(g / BLOCK_SIZE);
      const inBlock = g - b * BLOCK_SIZE;
      const n = Math.min(data.length - pos, BLOCK_SIZE - inBlock);
      const e = this.bmap[b];
      if (isAllocated(e)) {
        await this.file.write(this.hostOf(e) + inBlock, data.subarray(pos, pos + n));
      } else {
        // A new block goes after the last one and is written whole, as QEMU does.
        const idx = this.h.blocksAllocated;
        if (idx >= this.h.blocksInImage) throw new BlockError('corrupt', `blocks_allocated: ${idx} blocks already allocated of ${this.h.blocksInImage}`, { field: 'blocks_allocated' });
        const block = Buffer.alloc(BLOCK_SIZE);
        data.copy(block, inBlock, pos, pos + n);
        await this.file.write(this.hostOf(idx), block);
        this.bmap[b] = idx;
        this.h.blocksAllocated = idx + 1;
        const entry = Buffer.alloc(4);
        entry.writeUInt32LE(idx);
        await this.file.write(this.h.offsetBmap + 4 * b, entry);
        headerDirty = true;
      }
      pos += n;
    }
    if (headerDirty) {
      const c = Buffer.alloc(4);
      c.writeUInt32LE(this.h.blocksAllocated);
      await this.file.write(0x184, c);
    }
  }

  /** VDI has no zero flag: zeroes are written (allocating), as QEMU's generic fallback does. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    return writeZeroesByWriting(this, offset, length);
  }

  /** QEMU 7.2's vdi has no discard: the request is a hint it ignores, and so do we. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  flush(): Promise<void> { return this.file.flush(); }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const end = Math.min(this.size(), offset + length);
    const b = Math.floor(offset / BLOCK_SIZE);
    const e = this.bmap[b];
    if (!isAllocated(e)) {
      // Unallocated blocks read as zeroes; QEMU reports them present and zero.
      let stop = (b + 1) * BLOCK_SIZE;
      while (stop < end && !isAllocated(this.bmap[stop / BLOCK_SIZE])) stop += BLOCK_SIZE;
      return { offset, length: Math.min(stop, end) - offset, data: false, zero: true, present: true, depth: 0 };
    }
    const n = Math.min(end, (b + 1) * BLOCK_SIZE) - offset;
    const host = this.hostOf(e) + (offset - b * BLOCK_SIZE);
    if (this.h.imageType === TYPE_STATIC) {
      // Static images: QEMU asks the file whether the block holds data or a hole.
      const fileEnd = this.file.size();
      if (host >= fileEnd) return { offset, length: n, data: true, zero: true, present: true, depth: 0, hostOffset: host };
      const f = await this.file.blockStatus(host, Math.min(n, fileEnd - host));
      return { offset, length: Math.min(n, f.length), data: true, zero: f.zero, present: true, depth: 0, hostOffset: host };
    }
    return { offset, length: n, data: true, zero: false, present: true, depth: 0, hostOffset: host };
  }

  /** qemu-img check: every allocated entry in range and used once, blocks_allocated right. No repair. */
  async check(opts: { repair?: 'leaks' | 'all'; log?: (line: string) => void }): Promise<CheckResult> {
    if (opts.repair) throw new BlockError('unsupported', 'vdi: this image format does not support checks with repair (Operation not supported)', { option: 'r' });
    const log = opts.log ?? (() => undefined);
    const owner = new Int32Array(this.h.blocksInImage).fill(-1);
    let allocated = 0;
    let corruptions = 0;
    for (let i = 0; i < this.bmap.length; i++) {
      const e = this.bmap[i];
      if (!isAllocated(e)) continue;
      if (e >= this.h.blocksInImage) {
        log(`ERROR: block index ${i} too large, is ${e}`);
        corruptions++;
        continue;
      }
      allocated++;
      if (owner[e] >= 0) {
        log(`ERROR: block index ${owner[e]} also used by ${i}`);
        corruptions++;
      } else owner[e] = i;
    }
    if (allocated !== this.h.blocksAllocated) {
      log(`ERROR: allocated blocks mismatch, is ${allocated}, should be ${this.h.blocksAllocated}`);
      corruptions++;
    }
    const out: CheckResult = { 'check-errors': 0, exitCode: corruptions ? 2 : 0 };
    if (corruptions) out.corruptions = corruptions;
    return out;
  }

  close(): Promise<void> { return this.file.close(); }
}

/** Creation, byte for byte as qemu-img 7.2 writes it (the two UUIDs are random). */
async function createVdi(file: ProtocolNode, opts: VdiCreateOptions): Promise<void> {
  const size = opts.size ?? 0;
  const isStatic = opts.static === true;
  if (size > VDI_DISK_SIZE_MAX) {
    throw new BlockError('invalid-size', `size: Unsupported VDI image size (size is 0x${size.toString(16)}, max supported is 0x${VDI_DISK_SIZE_MAX.toString(16)})`, { option: 'size', value: size });
  }
  const blocks = Math.ceil(size / BLOCK_SIZE);
  const mapBytes = Math.ceil((blocks * 4) / SECTOR) * SECTOR;
  const offsetBmap = SECTOR;
  const offsetData = offsetBmap + mapBytes;
  const h = Buffer.alloc(SECTOR);
  h.write(TEXT, 0, 'latin1');
  h.writeUInt32LE(VDI_SIGNATURE, 0x40);
  h.writeUInt32LE(VDI_VERSION, 0x44);
  h.writeUInt32LE(0x180, 0x48);
  h.writeUInt32LE(isStatic ? TYPE_STATIC : TYPE_DYNAMIC, 0x4c);
  h.writeUInt32LE(offsetBmap, 0x154);
  h.writeUInt32LE(offsetData, 0x158);
  h.writeUInt32LE(SECTOR, 0x168);
  h.writeBigUInt64LE(BigInt(size), 0x170);
  h.writeUInt32LE(BLOCK_SIZE, 0x178);
  h.writeUInt32LE(blocks, 0x180);
  h.writeUInt32LE(isStatic ? blocks : 0, 0x184);
  newUuid().copy(h, 0x188);
  newUuid().copy(h, 0x198);
  await file.write(0, h);
  if (mapBytes > 0) {
    const chunkEntries = 1 << 18;
    for (let first = 0; first < mapBytes / 4; first += chunkEntries) {
      const count = Math.min(chunkEntries, mapBytes / 4 - first);
      const buf = Buffer.alloc(count * 4);
      for (let i = 0; i < count; i++) {
        const b = first + i;
        // Static: block i lives at host block i. Padding after the last entry stays zero.
        buf.writeUInt32LE(b >= blocks ? 0 : isStatic ? b : UNALLOCATED, i * 4);
      }
      await file.write(offsetBmap + first * 4, buf);
    }
  }
  if (isStatic) await file.truncate(offsetData + blocks * BLOCK_SIZE, 'off');
}

export const vdiDriver: FormatDriver = {
  name: 'vdi',
  probe: (head) => (head.length >= SECTOR && head.readUInt32LE(0x40) === VDI_SIGNATURE ? 100 : 0),
  create: (file, options) => createVdi(file, options as VdiCreateOptions),
  async open(file, ctx) {
    return VdiImage.open(file, ctx);
  },
  createOptionKeys: ['size', 'static', 'preallocation', 'nocow', 'extent_size_hint'],
};
