/**
 * cloop: Linux compressed loop images (the V2.0 layout create_compressed_fs
 * writes, as QEMU 7.2 reads them), read only.
 *
 * Layout (big endian):
 *   0x00  a 128-byte shell preamble starting "#!/bin/sh\n#V2.0 Format\nmodprobe cloop ..."
 *   0x80  block_size u32  bytes of guest data per block (a multiple of 512)
 *   0x84  n_blocks   u32  number of blocks; the virtual size is n_blocks * block_size
 *   0x88  offsets    u64[n_blocks + 1]: block i is the zlib stream at
 *         offsets[i] .. offsets[i+1] of the file, inflating to exactly block_size bytes
 *
 * Checks, as QEMU's: block_size a non-zero multiple of 512 and at most 64 MiB;
 * n_blocks at most (2^32 - 2) / 8 and the table at most 512 MiB; offsets never
 * decreasing and no block longer than 128 MiB. Stricter than QEMU (which reads
 * past the end of the file as zeroes and fails only the read): the table and the
 * last block must end inside the file, and a block may not be longer than zlib's
 * worst case for block_size bytes.
 *
 * Memory bound: the offset table (8 bytes per block, and it must fit in the file),
 * the decompressed blocks of one read (its length plus two blocks of at most 64 MiB:
 * inflation stops at block_size bytes, so a zip bomb costs no more than a block) and
 * their compressed bytes (at most 8 MiB at once, or one block). The blocks of a read
 * inflate in parallel on zlib's thread pool.
 */
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import { BlockError, malformed } from '../errors.js';
import { checkRange, type BlockStatus, type ImageNode, type ProtocolNode } from '../node.js';
import type { FormatDriver } from './driver.js';
import { refuseCreate, refuseReadWrite, refuseWrite, wholeDataStatus } from './read-only.js';

const MAGIC = '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n';
const HEADER = 0x88;
const MAX_BLOCK = 64 << 20;
const MAX_TABLE = 512 << 20;
/** compressed bytes read from the file in one go */
const READ_BATCH = 8 << 20;
const inflateAsync = promisify(inflate) as (b: Buffer, o: { maxOutputLength: number }) => Promise<Buffer>;

/** zlib's worst case for n bytes (stored blocks plus header and trailer), with room to spare. */
function maxCompressed(n: number): number {
  return n + (n >> 4) + 64;
}

export class CloopImage implements ImageNode {
  readonly driver = 'cloop';
  readonly readOnly = true;
  private cached = -1;
  private block: Buffer = Buffer.alloc(0);
  private constructor(readonly file: ProtocolNode, private readonly blockSize: number, private readonly offsets: Float64Array) {}

  static async open(file: ProtocolNode, ctx: { readOnly: boolean }): Promise<CloopImage> {
    refuseReadWrite('cloop', ctx.readOnly);
    const fileSize = file.size();
    if (fileSize < HEADER) throw malformed('header', `the file is ${fileSize} bytes, shorter than a cloop header (${HEADER})`);
    const h = await file.read(0, HEADER);
    const blockSize = h.readUInt32BE(0x80);
    const n = h.readUInt32BE(0x84);
    if (blockSize % 512) throw malformed('block_size', `block_size ${blockSize} must be a multiple of 512`, 0x80);
    if (blockSize === 0) throw malformed('block_size', 'block_size cannot be zero', 0x80);
    if (blockSize > MAX_BLOCK) throw malformed('block_size', `block_size ${blockSize} must be ${MAX_BLOCK >> 20} MB or less`, 0x80);
    const maxN = Math.floor((0xffffffff - 1) / 8);
    if (n > maxN) throw malformed('n_blocks', `n_blocks ${n} must be ${maxN} or less`, 0x84);
    const tableBytes = (n + 1) * 8;
    if (tableBytes > MAX_TABLE) throw malformed('n_blocks', `n_blocks ${n}: the image requires too many offsets, try increasing block size`, 0x84);
    if (HEADER + tableBytes > fileSize) throw malformed('offsets', `the offset table (n_blocks ${n} + 1 entries) ends at ${HEADER + tableBytes}, past the end of the file (${fileSize} bytes)`, 0x84);
    const raw = await file.read(HEADER, tableBytes);
    const offsets = new Float64Array(n + 1);
    const limit = maxCompressed(blockSize);
    for (let i = 0; i <= n; i++) {
      const v = raw.readBigUInt64BE(8 * i);
      if (v > BigInt(fileSize)) throw malformed('offsets', `offset ${i} (${v}) points past the end of the file (${fileSize} bytes)`, HEADER + 8 * i);
      offsets[i] = Number(v);
      if (i === 0) continue;
      if (offsets[i] < offsets[i - 1]) throw malformed('offsets', `offsets not monotonically increasing at index ${i} (${offsets[i]} after ${offsets[i - 1]})`, HEADER + 8 * i);
      const len = offsets[i] - offsets[i - 1];
      if (len > limit) throw malformed('offsets', `block ${i - 1} is ${len} compressed bytes, more than a ${blockSize}-byte block can need (${limit})`, HEADER + 8 * i);
    }
    return new CloopImage(file, blockSize, offsets);
  }

  get filename(): string { return this.file.filename; }
  size(): number { return (this.offsets.length - 1) * this.blockSize; }

  private failure(i: number, e: unknown): BlockError {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      return new BlockError('corrupt', `block ${i} inflates beyond the block size (${this.blockSize} bytes): image file is corrupt`, { field: 'block', offset: this.offsets[i] });
    }
    return new BlockError('corrupt', `block ${i} at ${this.offsets[i]} does not decompress (not zlib data: ${err.message})`, { field: 'block', offset: this.offsets[i] });
  }

  /** Inflates a block on zlib's thread pool (the blocks of one read decompress in parallel). */
  private async inflate(i: number, compressed: Buffer): Promise<Buffer> {
    let out: Buffer;
    try {
      out = await inflateAsync(compressed, { maxOutputLength: this.blockSize });
    } catch (e) {
      throw this.failure(i, e);
    }
    if (out.length !== this.blockSize) {
      throw new BlockError('corrupt', `block ${i} inflates to ${out.length} bytes, not the block size (${this.blockSize})`, { field: 'block', offset: this.offsets[i] });
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    if (length === 0) return;
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    let b = first;
    while (b <= last) {
      // one pread for as many uncached blocks as fit in READ_BATCH
      let end = b;
      if (b !== this.cached) {
        while (end < last && this.offsets[end + 2]! - this.offsets[b]! <= READ_BATCH) end++;
      }
      const base = this.offsets[b]!;
      const compressed = b === this.cached ? null : await this.file.read(base, this.offsets[end + 1]! - base);
      const blocks = await Promise.all(Array.from({ length: end - b + 1 }, (_, k) => {
        const i = b + k;
        return i === this.cached ? this.block : this.inflate(i, compressed!.subarray(this.offsets[i]! - base, this.offsets[i + 1]! - base));
      }));
      for (let i = b; i <= end; i++) {
        const s = Math.max(offset, i * bs);
        const e = Math.min(offset + length, (i + 1) * bs);
        blocks[i - b]!.copy(target, at + s - offset, s - i * bs, e - i * bs);
      }
      this.block = blocks[blocks.length - 1]!;
      this.cached = end;
      b = end + 1;
    }
  }

  async write(): Promise<void> { refuseWrite('cloop'); }
  async writeZeroes(): Promise<void> { refuseWrite('cloop'); }
  async discard(): Promise<void> { refuseWrite('cloop'); }
  async flush(): Promise<void> { /* nothing is ever written */ }
  async blockStatus(offset: number, length: number): Promise<BlockStatus> { return wholeDataStatus(this.size(), offset, length); }
  async close(): Promise<void> { return this.file.close(); }
}

export const cloopDriver: FormatDriver = {
  name: 'cloop',
  // QEMU compares as much of the preamble as the probe buffer holds, and scores 2
  probe: (head) => {
    const n = Math.min(MAGIC.length, head.length);
    return n > 0 && head.toString('latin1', 0, n) === MAGIC.slice(0, n) ? 2 : 0;
  },
  create: async () => refuseCreate('cloop'),
  open: (file, ctx) => CloopImage.open(file, ctx),
  createOptionKeys: [],
  canCreate: false,
};
