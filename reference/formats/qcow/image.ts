/**
 * An open qcow (version 1) image. Allocation follows QEMU: a missing L2 table
 * goes at the cluster-aligned end of the file (L1 entry first, then the zeroed
 * table), then the data cluster after it, made whole by growing the file;
 * qcow copies nothing from the backing file (overlays use 512-byte clusters,
 * so sector writes always fill a cluster). Compressed clusters are read, and
 * decompressed into a new cluster when partly overwritten. There is no discard
 * and no zero cluster: zeroing writes zeroes.
 */
import { legacyAesCipher } from '../../crypto/qcow-aes.js';
import { lookupSecret, type SecretStore } from '../../crypto/secret.js';
import type { SectorCipher } from '../../crypto/luks1.js';
import { inflateRawSync } from 'node:zlib';
import { BlockError } from '../../errors.js';
import { writeZeroesByWriting, checkRange, type BlockNode, type BlockStatus, type ImageNode, type ProtocolNode } from '../../node.js';
import { backingStatus, readBacking } from '../backing-read.js';
import { COMPRESSED, decodeHeader, HEADER_BYTES, type QcowHeader } from './header.js';

type Entry = { kind: 'unallocated' } | { kind: 'data'; host: number } | { kind: 'compressed'; host: number; csize: number };

const L2_CACHE_TABLES = 16;
const SECTOR = 512;

export class QcowImage implements ImageNode {
  readonly driver = 'qcow';
  backingFile?: string;
  backingFormat?: string;
  backing?: BlockNode | null;
  check?: ImageNode['check'];
  readonly clusterSize: number;
  readonly l2Entries: number;
  private readonly l2Cache = new Map<number, Buffer>();

  private constructor(readonly file: ProtocolNode, readonly header: QcowHeader, private readonly l1: Buffer) {
    this.clusterSize = 1 << header.clusterBits;
    this.l2Entries = 1 << header.l2Bits;
  }

  /** legacy AES (crypt_method 1): AES-128-CBC per sector, IV the guest sector; null until unlocked */
  private cipher: SectorCipher | null = null;
  get encrypted(): boolean { return this.header.cryptMethod === 1; }

  static async open(file: ProtocolNode, key: { secrets?: SecretStore; keySecret?: string; noIO?: boolean } = {}): Promise<QcowImage> {
    const head = await file.read(0, Math.min(HEADER_BYTES, file.size()));
    const h = decodeHeader(head, file.size());
    const l1 = await file.read(h.l1TableOffset, h.l1Size * 8);
    const img = new QcowImage(file, h, l1);
    if (h.cryptMethod === 1 && !(key.noIO && !key.keySecret)) {
      if (!key.keySecret) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
      img.cipher = legacyAesCipher(lookupSecret(key.secrets ?? new Map(), key.keySecret, 'encrypt.key-secret'));
    }
    if (h.backingFileOffset !== 0) img.backingFile = (await file.read(h.backingFileOffset, h.backingFileSize)).toString('utf8');
    return img;
  }

  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  readonly dirty = false;
  size(): number { return this.header.size; }

  private l2Bytes(): number { return this.l2Entries * 8; }

  private async l2Table(offset: number, l1Index: number): Promise<Buffer> {
    const hit = this.l2Cache.get(offset);
    if (hit) return hit;
    if (offset < HEADER_BYTES || offset + this.l2Bytes() > this.file.size()) {
      throw new BlockError('corrupt', `l1_table[${l1Index}]: L2 table offset ${offset} does not lie within the file`, { field: 'l1_table', offset });
    }
    const t = await this.file.read(offset, this.l2Bytes());
    if (this.l2Cache.size >= L2_CACHE_TABLES) this.l2Cache.delete(this.l2Cache.keys().next().value as number);
    this.l2Cache.set(offset, t);
    return t;
  }

  private async entry(cluster: number): Promise<Entry> {
    const l1Index = Math.floor(cluster / this.l2Entries);
    const l2Off = Number(this.l1.readBigUInt64BE(l1Index * 8));
    if (l2Off === 0) return { kind: 'unallocated' };
    const t = await this.l2Table(l2Off, l1Index);
    const raw = t.readBigUInt64BE((cluster % this.l2Entries) * 8);
    if (raw === 0n) return { kind: 'unallocated' };
    const fileSize = this.file.size();
    if (raw & COMPRESSED) {
      const bits = BigInt(63 - this.header.clusterBits);
      const host = Number(raw & ((1n << bits) - 1n));
      const csize = Number((raw >> bits) & BigInt(this.clusterSize - 1));
      if (host + csize > fileSize) {
        throw new BlockError('corrupt', `l2 entry of cluster ${cluster}: compressed data ${host}+${csize} past the end of the file`, { field: 'l2_table', offset: host });
      }
      return { kind: 'compressed', host, csize };
    }
    const host = Number(raw);
    if (host < HEADER_BYTES || host >= fileSize) {
      throw new BlockError('corrupt', `l2 entry of cluster ${cluster}: data offset ${host} outside the file`, { field: 'l2_table', offset: host });
    }
    return { kind: 'data', host };
  }

  private async decompress(e: { host: number; csize: number }): Promise<Buffer> {
    const src = await this.file.read(e.host, e.csize);
    let out: Buffer;
    try {
      out = inflateRawSync(src, { maxOutputLength: this.clusterSize, finishFlush: 2 /* Z_SYNC_FLUSH: tolerate trailing bytes */ });
    } catch (err) {
      throw new BlockError('corrupt', `compressed cluster at ${e.host}: ${(err as Error).message}`, { field: 'l2_table', offset: e.host, cause: err });
    }
    if (out.length !== this.clusterSize) {
      throw new BlockError('corrupt', `compressed cluster at ${e.host} inflates to ${out.length} bytes, not ${this.clusterSize}`, { field: 'l2_table', offset: e.host });
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (this.encrypted && (offset % 512 || length % 512)) {
      const s = Math.floor(offset / 512) * 512;
      const e = Math.min(this.size(), Math.ceil((offset + length) / 512) * 512);
      return (await this.read(s, e - s)).subarray(offset - s, offset - s + length);
    }
    const out = Buffer.alloc(length);
    const cs = this.clusterSize;
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const cl = Math.floor(g / cs);
      const inCl = g - cl * cs;
      const n = Math.min(length - pos, cs - inCl);
      const e = await this.entry(cl);
      if (e.kind === 'data') {
        // A cluster may end past the file (QEMU grows the file by truncation): that part reads as zeroes.
        const avail = Math.max(0, Math.min(n, this.file.size() - (e.host + inCl)));
        if (avail > 0) (await this.file.read(e.host + inCl, avail)).copy(out, pos);
        if (this.encrypted) {
          if (!this.cipher) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
          this.cipher.run(false, out.subarray(pos, pos + n), g / 512);
        }
      } else if (e.kind === 'compressed') {
        (await this.decompress(e)).copy(out, pos, inCl, inCl + n);
      } else if (this.backing) {
        (await readBacking(this.backing, g, n)).copy(out, pos);
      }
      pos += n;
    }
    return out;
  }

  private alignedEnd(): number {
    return Math.ceil(this.file.size() / this.clusterSize) * this.clusterSize;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: image is read-only`);
    // QEMU's block layer hands qcow whole sectors: a partial sector is read, patched and written.
    const a = Math.floor(offset / SECTOR) * SECTOR;
    const b = Math.min(this.size(), Math.ceil((offset + data.length) / SECTOR) * SECTOR);
    if (a !== offset || b !== offset + data.length) {
      const buf = await this.read(a, b - a);
      data.copy(buf, offset - a);
      return this.writeAligned(a, buf);
    }
    return this.writeAligned(offset, data);
  }

  private async writeAligned(offset: number, data: Buffer): Promise<void> {
    const cs = this.clusterSize;
    let pos = 0;
    while (pos < data.length) {
      const g = offset + pos;
      const cl = Math.floor(g / cs);
      const inCl = g - cl * cs;
      const n = Math.min(data.length - pos, cs - inCl);
      const host = await this.allocate(cl, inCl, n);
      let piece = data.subarray(pos, pos + n);
      if (this.encrypted) piece = this.encrypt(Buffer.from(piece), g);
      await this.file.write(host + inCl, piece);
      pos += n;
    }
  }

  /** AES-CBC over whole sectors of guest offset `g` (IV the guest sector number), in place. */
  private encrypt(buf: Buffer, g: number): Buffer {
    if (!this.cipher) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
    return this.cipher.run(true, buf, g / SECTOR);
  }

  /** Host offset of guest cluster `cl`, allocating it (and its L2 table) for a write of [inCl, inCl+n). */
  private async allocate(cl: number, inCl: number, n: number): Promise<number> {
    const cs = this.clusterSize;
    const l1Index = Math.floor(cl / this.l2Entries);
    let l2Off = Number(this.l1.readBigUInt64BE(l1Index * 8));
    if (l2Off === 0) {
      l2Off = this.alignedEnd();
      this.l1.writeBigUInt64BE(BigInt(l2Off), l1Index * 8);
      await this.file.write(this.header.l1TableOffset + l1Index * 8, this.l1.subarray(l1Index * 8, l1Index * 8 + 8));
      const t = Buffer.alloc(this.l2Bytes());
      await this.file.write(l2Off, t);
      this.l2Cache.set(l2Off, t);
    }
    const e = await this.entry(cl);
    if (e.kind === 'data') return e.host;
    const host = this.alignedEnd();
    if (e.kind === 'compressed' && n < cs) {
      // The rest of the cluster keeps its old contents.
      await this.file.write(host, await this.decompress(e));
    } else if (this.encrypted && n < cs) {
      // qcow.c: the sectors a partial write leaves untouched get encrypted zeroes
      const z = Buffer.alloc(cs);
      this.encrypt(z, cl * cs);
      await this.file.write(host, z);
    } else {
      await this.file.truncate(host + cs);
    }
    const t = await this.l2Table(l2Off, l1Index);
    const i = cl % this.l2Entries;
    t.writeBigUInt64BE(BigInt(host), i * 8);
    await this.file.write(l2Off + i * 8, t.subarray(i * 8, i * 8 + 8));
    void inCl;
    return host;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    // qcow has no zero clusters: QEMU writes zeroes.
    return writeZeroesByWriting(this, offset, length);
  }

  /** qcow has no discard: QEMU succeeds and leaves the data as it is. */
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this, offset, length);
    const cs = this.clusterSize;
    const end = offset + length;
    const first = await this.statusOne(offset);
    let pos = Math.min(end, first.offset + first.length);
    while (pos < end && (first.present || !this.backing)) {
      const next = await this.statusOne(pos);
      if (!first.present) {
        if (next.present) break;
        pos = Math.min(end, next.offset + next.length);
        continue;
      }
      const contiguous = first.hostOffset === undefined ? next.hostOffset === undefined : next.hostOffset === first.hostOffset + (pos - offset);
      if (!next.present || next.data !== first.data || !!next.compressed !== !!first.compressed || !contiguous) break;
      pos = Math.min(end, next.offset + next.length);
    }
    if (!first.present) return backingStatus(this.backing, offset, (this.backing ? Math.min(end, Math.floor(offset / cs) * cs + cs) : pos) - offset);
    return { ...first, offset, length: pos - offset };
  }

  private async statusOne(g: number): Promise<BlockStatus> {
    const cs = this.clusterSize;
    const cl = Math.floor(g / cs);
    const length = Math.min(this.size(), (cl + 1) * cs) - g;
    const e = await this.entry(cl);
    // qcow_co_block_status gives an encrypted image's data no host offset
    if (e.kind === 'data') return { offset: g, length, data: true, zero: false, present: true, depth: 0, ...(this.encrypted ? {} : { hostOffset: e.host + (g - cl * cs) }) };
    if (e.kind === 'compressed') return { offset: g, length, data: true, zero: false, present: true, depth: 0, compressed: true };
    return { offset: g, length, data: false, zero: false, present: false, depth: 0 };
  }

  async flush(): Promise<void> { await this.file.flush(); }

  async close(): Promise<void> {
    await this.backing?.close();
    await this.file.close();
  }
}
