/**
 * dmg: Apple UDIF disk images, read only, as QEMU 7.2 reads them.
 *
 * The 512-byte "koly" trailer (big endian) sits at the end of the file (QEMU looks
 * for its magic in the last 515 bytes): data fork offset/length at 0x18/0x20,
 * resource fork offset/length at 0x28/0x30, XML plist offset/length at 0xd8/0xe0,
 * sector count at 0x1ec. The chunk tables are "mish" blocks, either in the binary
 * resource fork or base64 in the plist's resource-fork/blkx array: a 204-byte
 * header (first sector at 8, data offset at 0x18), then 40-byte chunks (type,
 * comment, sector, sector count, offset, length; sector relative to the block's
 * first sector, offset to the data fork plus the block's data offset).
 * Chunk types: zero (0), raw (1), ignore (2), ADC (0x80000004), zlib (0x80000005),
 * bzip2 (0x80000006), lzfse (0x80000007), comment (0x7ffffffe), last (0xffffffff).
 *
 * Checks, as QEMU's: trailer inside the file, data fork, resource fork and plist
 * before the trailer, plist of at most 16 MiB, chunks of at most 64 MiB of input and
 * (non-zero chunks) 131072 sectors of output. Stricter than QEMU: the data fork must
 * end before the trailer, a plist must be XML with a blkx array, a mish block's
 * chunk count must match its length, chunks must lie inside the data fork and the
 * disk, in order and without overlap, and a chunk inflates to exactly its sectors.
 * Probing is by the ".dmg" file name only, as QEMU's (UDIF has no leading magic).
 *
 * Memory bound: the plist (16 MiB) or resource fork (the same cap), the chunk table
 * (40 bytes per chunk; at most 16 MiB / 40 chunks fit a plist or fork), and one
 * decompressed chunk (at most 64 MiB) plus its compressed bytes (at most 64 MiB).
 */
import { inflateSync } from 'node:zlib';
import Bunzip from 'seek-bzip';
import { BlockError, malformed } from '../../errors.js';
import { checkRange, type BlockStatus, type ImageNode, type ProtocolNode } from '../../node.js';
import type { FormatDriver } from '../driver.js';
import { refuseCreate, refuseReadWrite, refuseWrite, wholeDataStatus } from '../read-only.js';
import { adcDecompress } from './adc.js';

export const CHUNK = { zero: 0, raw: 1, ignore: 2, adc: 0x80000004, zlib: 0x80000005, bzip2: 0x80000006, lzfse: 0x80000007, comment: 0x7ffffffe, last: 0xffffffff } as const;
const NAMES: Record<number, string> = { 0: 'zero', 1: 'raw', 2: 'ignore', 0x80000004: 'adc', 0x80000005: 'zlib', 0x80000006: 'bzip2', 0x80000007: 'lzfse' };
const MAX_LENGTH = 64 << 20;
const MAX_SECTORS = MAX_LENGTH / 512;
const MAX_PLIST = 16 << 20;
const SECTOR = 512;

interface Chunks { type: Uint32Array; sector: Float64Array; count: Float64Array; offset: Float64Array; length: Float64Array; n: number }

function u64(b: Buffer, at: number, field: string): number {
  const v = b.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(field, `${field} ${v} is beyond any file or disk`, at);
  return Number(v);
}

/** Finds "koly" in the last 515 bytes, as QEMU does (a file may end a few bytes after the trailer). */
async function findKoly(file: ProtocolNode): Promise<number> {
  const size = file.size();
  if (size < 512) throw malformed('koly', `dmg file must be at least 512 bytes long (it is ${size})`);
  const start = size > 1023 ? size - 1023 : 0;
  const buf = await file.read(start, Math.min(size, 515));
  const i = buf.indexOf('koly', 0, 'latin1');
  if (i < 0) throw malformed('koly', 'Could not locate UDIF trailer (koly) in the last 515 bytes of the dmg file');
  return start + i;
}

/** The base64 texts of the <data> elements of the plist's blkx array. */
function blkxData(xml: string): string[] {
  if (!/^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?<plist[\s>]/.test(xml)) throw malformed('plist', 'the property list is not XML (no <plist> element where it begins)');
  const key = xml.indexOf('<key>blkx</key>');
  if (key < 0) throw malformed('blkx', 'the property list has no blkx key: no chunk tables');
  const open = xml.indexOf('<array>', key);
  const close = open < 0 ? -1 : xml.indexOf('</array>', open);
  if (open < 0 || close < 0 || /<key>/.test(xml.slice(key + 15, open))) throw malformed('blkx', 'the blkx key is not followed by an <array> of chunk tables');
  const out: string[] = [];
  const body = xml.slice(open, close);
  let at = 0;
  for (;;) {
    const s = body.indexOf('<data>', at);
    if (s < 0) break;
    const e = body.indexOf('</data>', s);
    if (e < 0) throw malformed('plist', 'a <data> element is not closed (malformed XML)');
    out.push(body.slice(s + 6, e));
    at = e + 7;
  }
  return out;
}

/** Appends a mish block's chunks; non-mish data is skipped, as QEMU does. */
function readMish(b: Buffer, dataFork: number, out: Chunks, index: number): void {
  if (b.length < 204 + 40 || b.toString('latin1', 0, 4) !== 'mish') return;
  const first = u64(b, 8, 'mish SectorNumber');
  const dataOffset = u64(b, 0x18, 'mish DataOffset');
  const declared = b.readUInt32BE(0xc8);
  const count = Math.floor((b.length - 204) / 40);
  if (declared !== count) throw malformed('NumberOfBlockChunks', `blkx entry ${index} declares ${declared} chunks but holds ${count}`, 0xc8);
  for (let i = 0; i < count; i++) {
    const at = 204 + 40 * i;
    const type = b.readUInt32BE(at);
    if (type === CHUNK.comment || type === CHUNK.last) continue;
    const n = out.n;
    if (n === out.type.length) grow(out);
    out.type[n] = type;
    out.sector[n] = first + u64(b, at + 8, 'chunk sector');
    out.count[n] = u64(b, at + 0x10, 'chunk sector count');
    out.offset[n] = dataFork + dataOffset + u64(b, at + 0x18, 'chunk offset');
    out.length[n] = u64(b, at + 0x20, 'chunk length');
    if (type !== CHUNK.zero && type !== CHUNK.ignore && out.count[n]! > MAX_SECTORS) {
      throw malformed('chunk sector count', `sector count ${out.count[n]} for chunk ${n} is larger than max (${MAX_SECTORS})`, at + 0x10);
    }
    if (out.length[n]! > MAX_LENGTH) throw malformed('chunk length', `length ${out.length[n]} for chunk ${n} is larger than max (${MAX_LENGTH})`, at + 0x20);
    out.n++;
  }
}

function grow(c: Chunks): void {
  const size = Math.max(64, c.type.length * 2);
  const t = new Uint32Array(size); t.set(c.type); c.type = t;
  for (const k of ['sector', 'count', 'offset', 'length'] as const) {
    const a = new Float64Array(size); a.set(c[k]); c[k] = a;
  }
}

export class DmgImage implements ImageNode {
  readonly driver = 'dmg';
  readonly readOnly = true;
  private cached = -1;
  private chunk: Buffer = Buffer.alloc(0);
  private constructor(readonly file: ProtocolNode, private readonly sectors: number, private readonly c: Chunks) {}

  static async open(file: ProtocolNode, ctx: { readOnly: boolean }): Promise<DmgImage> {
    refuseReadWrite('dmg', ctx.readOnly);
    const k = await findKoly(file);
    const t = await file.read(k, Math.min(512, file.size() - k));
    if (t.length < 512) throw malformed('koly', `the UDIF trailer at ${k} is cut off by the end of the file (${t.length} of 512 bytes)`, k);
    const dataOffset = u64(t, 0x18, 'DataForkOffset');
    const dataLength = u64(t, 0x20, 'DataForkLength');
    if (dataOffset > k) throw malformed('DataForkOffset', `the data fork starts at ${dataOffset}, past the UDIF trailer at ${k}`, k + 0x18);
    if (dataLength > k - dataOffset) throw malformed('DataForkLength', `the data fork (${dataLength} bytes at ${dataOffset}) runs past the UDIF trailer at ${k}`, k + 0x20);
    const rsrcOffset = u64(t, 0x28, 'RsrcForkOffset');
    const rsrcLength = u64(t, 0x30, 'RsrcForkLength');
    if (rsrcLength && (rsrcOffset >= k || rsrcLength > k - rsrcOffset)) throw malformed('RsrcForkOffset', `the resource fork (${rsrcLength} bytes at ${rsrcOffset}) is not before the UDIF trailer at ${k}`, k + 0x28);
    const xmlOffset = u64(t, 0xd8, 'XMLOffset');
    const xmlLength = u64(t, 0xe0, 'XMLLength');
    if (xmlLength && (xmlOffset >= k || xmlLength > k - xmlOffset)) throw malformed('XMLOffset', `the property list (${xmlLength} bytes at ${xmlOffset}) is not before the UDIF trailer at ${k}`, k + 0xd8);
    const sectors = u64(t, 0x1ec, 'SectorCount');
    if (sectors > Number.MAX_SAFE_INTEGER / SECTOR) throw malformed('SectorCount', `SectorCount ${sectors} is beyond any disk`, k + 0x1ec);
    const c: Chunks = { type: new Uint32Array(0), sector: new Float64Array(0), count: new Float64Array(0), offset: new Float64Array(0), length: new Float64Array(0), n: 0 };
    if (rsrcLength) {
      if (rsrcLength > MAX_PLIST) throw malformed('RsrcForkLength', `the resource fork is ${rsrcLength} bytes, more than ${MAX_PLIST}`, k + 0x30);
      readResourceFork(await file.read(rsrcOffset, rsrcLength), dataOffset, c);
    } else if (xmlLength) {
      if (xmlLength > MAX_PLIST) throw malformed('XMLLength', `the property list is ${xmlLength} bytes, more than ${MAX_PLIST}`, k + 0xe0);
      const xml = (await file.read(xmlOffset, xmlLength)).toString('utf8');
      blkxData(xml).forEach((b64, i) => readMish(Buffer.from(b64.replace(/\s+/g, ''), 'base64'), dataOffset, c, i));
    } else {
      throw malformed('XMLLength', 'the UDIF trailer names neither a resource fork nor a property list (no chunk tables)', k + 0xe0);
    }
    const forkEnd = dataOffset + dataLength;
    let next = 0;
    for (let i = 0; i < c.n; i++) {
      if (c.sector[i]! < next) throw malformed('chunk sector', `chunk ${i} starts at sector ${c.sector[i]}, inside the chunk before it (chunks must be in order, not overlapping)`);
      next = c.sector[i]! + c.count[i]!;
      if (next > sectors) throw malformed('chunk sector', `chunk ${i} (sectors ${c.sector[i]}+${c.count[i]}) ends past the disk's ${sectors} sectors`);
      const stored = c.type[i] !== CHUNK.zero && c.type[i] !== CHUNK.ignore;
      if (stored && c.offset[i]! + c.length[i]! > forkEnd) throw malformed('chunk offset', `chunk ${i} (${c.length[i]} bytes at ${c.offset[i]}) lies outside the data fork (which ends at ${forkEnd})`);
    }
    return new DmgImage(file, sectors, c);
  }

  get filename(): string { return this.file.filename; }
  size(): number { return this.sectors * SECTOR; }

  /** the chunk holding `sector`, or -1 */
  private find(sector: number): number {
    let lo = 0;
    let hi = this.c.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.c.sector[mid]! > sector) hi = mid - 1;
      else if (this.c.sector[mid]! + this.c.count[mid]! <= sector) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  private async load(i: number): Promise<Buffer> {
    if (i === this.cached) return this.chunk;
    const c = this.c;
    const type = c.type[i]!;
    const want = c.count[i]! * SECTOR;
    const where = { field: 'chunk', offset: c.offset[i]! };
    let out: Buffer;
    if (type === CHUNK.raw) {
      out = Buffer.alloc(want);
      (await this.file.read(c.offset[i]!, Math.min(want, c.length[i]!))).copy(out);
    } else if (type === CHUNK.zlib || type === CHUNK.bzip2 || type === CHUNK.adc) {
      const input = await this.file.read(c.offset[i]!, c.length[i]!);
      out = Buffer.alloc(want);
      let got: number;
      try {
        got = type === CHUNK.zlib ? inflateBounded(input, out) : type === CHUNK.bzip2 ? bunzipBounded(input, out) : adcDecompress(input, out);
      } catch (e) {
        if (e instanceof BlockError) throw e;
        throw new BlockError('corrupt', `chunk ${i} (${NAMES[type]}) does not decompress: ${(e as Error).message}`, where);
      }
      if (got !== want) throw new BlockError('corrupt', `chunk ${i} (${NAMES[type]}) decompresses to ${got} bytes, not its ${c.count[i]} sectors (${want} bytes)`, where);
    } else {
      const name = NAMES[type] ?? `0x${type.toString(16)}`;
      throw new BlockError('unsupported', `chunk ${i}: unsupported chunk type ${name}${type === CHUNK.lzfse ? ' (no lzfse decoder in the reference, as in Debian\'s qemu without its dmg-lzfse module)' : ''}`, where);
    }
    this.cached = i;
    this.chunk = out;
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const i = this.find(Math.floor(pos / SECTOR));
      if (i < 0) throw new BlockError('corrupt', `sector ${Math.floor(pos / SECTOR)} lies in no chunk of the dmg image`, { field: 'chunk sector' });
      const c0 = this.c.sector[i]! * SECTOR;
      const c1 = Math.min(end, c0 + this.c.count[i]! * SECTOR);
      const type = this.c.type[i];
      if (type === CHUNK.zero || type === CHUNK.ignore) {
        target.fill(0, at + pos - offset, at + c1 - offset);
      } else {
        (await this.load(i)).copy(target, at + pos - offset, pos - c0, c1 - c0);
      }
      pos = c1;
    }
  }

  async write(): Promise<void> { refuseWrite('dmg'); }
  async writeZeroes(): Promise<void> { refuseWrite('dmg'); }
  async discard(): Promise<void> { refuseWrite('dmg'); }
  async flush(): Promise<void> { /* nothing is ever written */ }
  async blockStatus(offset: number, length: number): Promise<BlockStatus> { return wholeDataStatus(this.size(), offset, length); }
  async close(): Promise<void> { return this.file.close(); }
}

/** inflate into `out`, never past its end: a zip bomb stops at the chunk's size. */
function inflateBounded(input: Buffer, out: Buffer): number {
  let r: Buffer;
  try {
    r = inflateSync(input, { maxOutputLength: out.length });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) throw new Error(`it inflates beyond its ${out.length} bytes`);
    throw e;
  }
  r.copy(out);
  return r.length;
}

function bunzipBounded(input: Buffer, out: Buffer): number {
  const sink = {
    pos: 0,
    writeByte(b: number) {
      if (this.pos >= out.length) throw new Error(`it decompresses beyond its ${out.length} bytes`);
      out[this.pos++] = b;
    },
  };
  Bunzip.decode(input, sink);
  return sink.pos;
}

/** The binary resource fork: data offset (u32) at 0, data length at 8, then resources of u32 length + bytes. */
function readResourceFork(b: Buffer, dataFork: number, c: Chunks): void {
  if (b.length < 16) throw malformed('RsrcForkLength', `the resource fork is ${b.length} bytes, too short for its header`);
  const dataOff = b.readUInt32BE(0);
  const count = b.readUInt32BE(8);
  if (dataOff > b.length || count === 0 || dataOff + count > b.length) throw malformed('RsrcForkOffset', `resource data (${count} bytes at ${dataOff}) lies outside the ${b.length}-byte resource fork`);
  let at = dataOff;
  const end = dataOff + count;
  let index = 0;
  while (at < end) {
    if (at + 4 > end) throw malformed('RsrcForkLength', `resource ${index} is cut off`);
    const len = b.readUInt32BE(at);
    if (len === 0 || len > end - at - 4) throw malformed('RsrcForkLength', `resource ${index} claims ${len} bytes, past the resource data`);
    readMish(b.subarray(at + 4, at + 4 + len), dataFork, c, index++);
    at += 4 + len;
  }
}

export const dmgDriver: FormatDriver = {
  name: 'dmg',
  // QEMU 7.2 recognises a dmg by its file name alone
  probe: (_head, filename) => (filename.length > 4 && filename.endsWith('.dmg') ? 2 : 0),
  create: async () => refuseCreate('dmg'),
  open: (file, ctx) => DmgImage.open(file, ctx),
  createOptionKeys: [],
  canCreate: false,
};
