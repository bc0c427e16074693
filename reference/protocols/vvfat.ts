/**
 * vvfat: a host directory presented as a read-only FAT disk, laid out with the
 * geometry QEMU 7.2's block/vvfat.c chooses (learned from its source and from
 * the images qemu-img 7.2 produces):
 *
 * - hard disk: 16 heads, 63 sectors per track, 1024 cylinders (504 MiB) for
 *   FAT16/FAT32, 64 cylinders (31.5 MiB) for FAT12; an MBR with one bootable
 *   partition starting at sector 63 (type 0x01 FAT12, 0x06 FAT16, 0x0b FAT32;
 *   0x0e/0x0c when the end is beyond CHS).
 * - floppy: 80 cylinders, 2 heads; 36 sectors per track (2.88 MB) unless
 *   fat-type=12 is given (18, 1.44 MB); no MBR, the boot sector is sector 0.
 * - always 16 sectors per cluster, 1 reserved sector, 2 FATs, 512 root entries;
 *   sectors per FAT = (count + i) / i with i = 1 + 16*512*8/fat_type.
 *   QEMU's "FAT32" keeps this FAT16-style BPB with 32-bit FAT entries (and
 *   prints a warning that FAT32 has not been tested); the reference does the same.
 * - every name gets VFAT long-name entries; short names are upper case, made
 *   of the characters DOS allows, with a ~N tail when the conversion lost
 *   something or the name is taken; the volume label is `label` (default
 *   "QEMU VVFAT") in the boot sector and as the root's first entry.
 *
 * Memory bound: the tree's metadata only, never file data. That is the FAT
 * (at most 504 sectors, 252 KiB), the directory entries (32 bytes each,
 * at most MAX_DIR_ENTRIES in all: 32 MiB) and one path per non-empty file.
 * File data is read from the host file on each read, one cached descriptor.
 *
 * Divergences from QEMU, on purpose:
 * - symbolic links are followed only to targets inside DIR, and a directory
 *   link to one of its own ancestors is skipped; QEMU follows every link, so
 *   it shows files outside DIR and recurses through a loop.
 * - a name that is not valid UTF-8 is left out (QEMU warns and makes a short
 *   name only).
 * - rw writes back on flush and on close (QEMU after every write request):
 *   a guest's edit made of several writes is judged once, whole, so an
 *   intermediate state of it is never applied. See rw below.
 *
 * rw (fat:rw:DIR, writable opens only): guest writes land in an overlay, a
 * temporary file unlinked as soon as it is open (so nothing is left behind),
 * with a bitmap of the sectors it holds; reads take overlay sectors over the
 * synthesised disk. Writes before the first FAT (the MBR, the boot sector)
 * are refused as QEMU refuses them, which keeps the geometry ours. On flush
 * and close the volume is read back (vvfat-volume.ts) and the directory
 * brought in line (vvfat-writeback.ts). Memory: two bitmaps of one bit per
 * sector (at most 126 KiB each) and the two trees' metadata.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockError } from '../errors.js';
import { checkRange, type BlockStatus, type ProtocolNode } from '../node.js';
import { emitWarning } from '../warnings.js';
import { FatVolume, type FatEntry, type FatLayout } from './vvfat-volume.js';
import { withinDir, writeBack } from './vvfat-writeback.js';

export const VVFAT_DEFAULT_LABEL = 'QEMU VVFAT';
const SECTOR = 512;
const SPC = 16;
const CLUSTER = SPC * SECTOR;
const ROOT_ENTRIES = 512;
const ROOT_SECTORS = (ROOT_ENTRIES * 32) / SECTOR;
/** at most this many 32-byte directory entries in the whole tree (32 MiB) */
export const MAX_DIR_ENTRIES = 1 << 20;

export interface VvfatOptions {
  dir: string;
  fatType?: number;
  floppy?: boolean;
  label?: string;
  rw?: boolean;
  readOnly?: boolean;
}

export interface VvfatGeometry {
  fatType: 12 | 16 | 32;
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
  /** sectors before the boot sector (the MBR's track): 63 for a disk, 0 for a floppy */
  bootOffset: number;
  totalSectors: number;
  /** sectors of the FAT volume */
  volumeSectors: number;
  sectorsPerFat: number;
  clusterCount: number;
}

/** The disk QEMU 7.2 makes for these options. */
export function vvfatGeometry(fatTypeOpt: number, floppy: boolean): VvfatGeometry {
  if (![0, 12, 16, 32].includes(fatTypeOpt)) {
    throw new BlockError('invalid-option', 'Valid FAT types are only 12, 16 and 32', { option: 'fat-type', value: fatTypeOpt });
  }
  let fatType: 12 | 16 | 32;
  let cylinders: number;
  let heads: number;
  let sectorsPerTrack: number;
  let bootOffset: number;
  if (floppy) {
    fatType = fatTypeOpt === 0 ? 12 : (fatTypeOpt as 12 | 16 | 32);
    sectorsPerTrack = fatTypeOpt === 12 ? 18 : 36;
    cylinders = 80;
    heads = 2;
    bootOffset = 0;
  } else {
    fatType = fatTypeOpt === 0 ? 16 : (fatTypeOpt as 12 | 16 | 32);
    cylinders = fatType === 12 ? 64 : 1024;
    heads = 16;
    sectorsPerTrack = 63;
    bootOffset = 0x3f;
  }
  const totalSectors = cylinders * heads * sectorsPerTrack;
  const volumeSectors = totalSectors - bootOffset;
  const i = 1 + Math.floor((SPC * SECTOR * 8) / fatType);
  const sectorsPerFat = Math.floor((volumeSectors + i) / i);
  const dataStart = 1 + 2 * sectorsPerFat + ROOT_SECTORS;
  const clusterCount = Math.floor((volumeSectors - dataStart) / SPC);
  return { fatType, cylinders, heads, sectorsPerTrack, bootOffset, totalSectors, volumeSectors, sectorsPerFat, clusterCount };
}

/** A character DOS allows in a short name, upper-cased; 0 when it has none. */
function shortChar(c: string): number {
  const u = c.toUpperCase();
  if (u.length !== 1) return 0;
  const code = u.charCodeAt(0);
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || "$%'-_@~`!(){}^#&".includes(u)) return code;
  return 0;
}

/**
 * The 8.3 name for `name` in a directory whose short names are `taken`:
 * base and extension from the allowed characters (the extension after the
 * last dot), a ~N tail when the conversion lost anything or the name is taken.
 */
export function shortName(name: string, taken: Set<string>): Buffer {
  const out = Buffer.alloc(11, 0x20);
  let j = 0;
  let lossy = false;
  const chars = Array.from(name);
  let lastDot = -1;
  for (let k = 0; k < chars.length; k++) {
    const c = chars[k]!;
    if (c === '.') {
      if (j === 0) lossy = true;
      else {
        if (lastDot >= 0) lossy = true;
        lastDot = k;
      }
    } else if (lastDot < 0) {
      const v = shortChar(c);
      if (j < 8 && v) out[j++] = v;
      else lossy = true;
    }
  }
  if (lastDot >= 0) {
    let e = 0;
    for (const c of chars.slice(lastDot + 1)) {
      const v = shortChar(c);
      if (e < 3 && v) out[8 + e++] = v;
      else lossy = true;
    }
  }
  if (out[0] === 0xe5) out[0] = 0x05;
  let baseLen = 0;
  while (baseLen < 8 && out[baseLen] !== 0x20) baseLen++;
  for (let n = lossy ? 1 : 0; n < 999999; n++) {
    if (n > 0) {
      const tail = `~${n}`;
      out.write(tail, Math.min(baseLen, 8 - tail.length), 'latin1');
    }
    const key = out.toString('latin1');
    if (!taken.has(key)) {
      taken.add(key);
      return out;
    }
  }
  throw new BlockError('unsupported', `vvfat: no short name left for '${name}'`, { option: 'dir', value: name });
}

function checksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + short[i]!) & 0xff;
  return sum;
}

/** The VFAT long-name entries for `name`, last part first, as they precede the short entry. */
export function longNameEntries(name: string, short: Buffer): Buffer[] {
  const units = Buffer.from(name, 'utf16le');
  const length = units.length / 2;
  const count = Math.ceil((length * 2) / 26);
  const sum = checksum(short);
  const entries: Buffer[] = [];
  for (let e = 0; e < count; e++) {
    const ent = Buffer.alloc(32);
    ent[0] = (count - e) | (e === 0 ? 0x40 : 0);
    ent[11] = 0x0f;
    ent[13] = sum;
    entries.push(ent);
  }
  for (let i = 0; i < 26 * count; i++) {
    let off = i % 26;
    off = off < 10 ? 1 + off : off < 22 ? 14 + off - 10 : 28 + off - 22;
    const ent = entries[count - 1 - Math.floor(i / 26)]!;
    if (i >= 2 * length + 2) ent[off] = 0xff;
    else if (i < 2 * length) ent[off] = units[i]!;
    else ent[off] = 0;
  }
  return entries;
}

function fatDate(d: Date): number {
  return (d.getDate() | ((d.getMonth() + 1) << 5) | ((Math.max(1980, d.getFullYear()) - 1980) << 9)) & 0xffff;
}

function fatTime(d: Date): number {
  return (Math.floor(d.getSeconds() / 2) | (d.getMinutes() << 5) | (d.getHours() << 11)) & 0xffff;
}

function shortEntry(short: Buffer, dir: boolean, st: fs.Stats | null, cluster: number, size: number): Buffer {
  const ent = Buffer.alloc(32);
  short.copy(ent, 0);
  ent[11] = dir ? 0x10 : 0x20;
  if (st) {
    ent.writeUInt16LE(fatTime(st.ctime), 14);
    ent.writeUInt16LE(fatDate(st.ctime), 16);
    ent.writeUInt16LE(fatDate(st.atime), 18);
    ent.writeUInt16LE(fatTime(st.mtime), 22);
    ent.writeUInt16LE(fatDate(st.mtime), 24);
  }
  ent.writeUInt16LE((cluster >>> 16) & 0xffff, 20);
  ent.writeUInt16LE(cluster & 0xffff, 26);
  ent.writeUInt32LE(size, 28);
  return ent;
}

/** A run of clusters: a directory's entries (in memory) or a host file's data (read on demand; the path changes when rw moves the file). */
interface Extent {
  begin: number;
  end: number;
  dir?: Buffer;
  file?: { path: string; size: number };
}

interface PendingDir {
  host: string;
  real: string;
  ancestors: Set<string>;
  /** the directory entry (buffer and byte offset) whose start cluster this directory fills in; null for the root */
  owner: { buf: Buffer; at: number } | null;
  parentCluster: number;
  st: fs.Stats;
}

/** rw mode's state: the overlay of written sectors and the tree as the host directory has it. */
interface RwState {
  dir: string;
  overlay: number;
  /** sectors the overlay holds */
  written: Uint8Array;
  /** sectors written since the last write-back */
  dirty: Uint8Array;
  pending: boolean;
  tree: FatEntry[];
}

const bit = (map: Uint8Array, s: number): boolean => (map[s >> 3]! & (1 << (s & 7))) !== 0;
const setBit = (map: Uint8Array, s: number): void => {
  map[s >> 3]! |= 1 << (s & 7);
};

export class VvfatNode implements ProtocolNode {
  readonly driver = 'vvfat';
  readonly readOnly: boolean;
  readonly filename: string;
  private readonly head: Buffer;
  private readonly fat: Buffer;
  private readonly root: Buffer;
  private extents: Extent[];
  private fd: { path: string; fd: number } | null = null;
  private closed = false;
  private rw: RwState | null = null;
  /** DIR's real path: a file read must still resolve inside it */
  private rootReal = '/';

  private constructor(readonly geometry: VvfatGeometry, filename: string, head: Buffer, fat: Buffer, root: Buffer, extents: Extent[], readOnly: boolean) {
    this.filename = filename;
    this.head = head;
    this.fat = fat;
    this.root = root;
    this.extents = extents;
    this.readOnly = readOnly;
  }

  static async open(o: VvfatOptions): Promise<VvfatNode> {
    if (o.rw && o.readOnly !== false) {
      // QEMU's check: rw needs a writable node, and -snapshot (or any read-only open) makes it read-only
      throw new BlockError('option-conflict', "Unable to set VVFAT to 'rw' when drive is read-only", { option: 'rw', value: true });
    }
    if (o.readOnly === false && !o.rw) {
      throw new BlockError('read-only', 'Image is read-only', { option: 'read-only' });
    }
    const label = o.label ?? VVFAT_DEFAULT_LABEL;
    if (Buffer.byteLength(label, 'utf8') > 11) {
      throw new BlockError('invalid-option', 'vvfat label cannot be longer than 11 bytes', { option: 'label', value: label });
    }
    const g = vvfatGeometry(o.fatType ?? 0, o.floppy === true);
    if (g.fatType === 32) emitWarning('FAT32 has not been tested. You are welcome to do so!');
    const dirname = o.dir.length > 1 && o.dir.endsWith('/') ? o.dir.slice(0, -1) : o.dir;
    let rootReal: string;
    let rootSt: fs.Stats;
    try {
      rootReal = fs.realpathSync(dirname);
      rootSt = fs.statSync(rootReal);
      if (!rootSt.isDirectory()) throw new Error('not a directory');
    } catch {
      throw new BlockError('not-found', `Could not read directory ${dirname}`, { option: 'dir', value: dirname });
    }
    const labelBytes = Buffer.alloc(11, 0x20);
    labelBytes.write(label, 0, 'utf8'); // QEMU copies the option's bytes as they are

    const fatBytes = g.fatType === 12 ? Math.floor(((g.clusterCount + 2) * 3 + 1) / 2) : (g.clusterCount + 2) * (g.fatType / 8);
    const fat = Buffer.alloc(g.sectorsPerFat * SECTOR);
    if (fatBytes > fat.length) throw new BlockError('unsupported', 'vvfat: FAT does not fit its sectors', { option: 'fat-type' });
    const setFat = (cluster: number, value: number): void => {
      if (g.fatType === 32) fat.writeUInt32LE(value >>> 0, cluster * 4);
      else if (g.fatType === 16) fat.writeUInt16LE(value & 0xffff, cluster * 2);
      else {
        const at = Math.floor((cluster * 3) / 2);
        if (cluster & 1) {
          fat[at] = (fat[at]! & 0x0f) | ((value & 0x0f) << 4);
          fat[at + 1] = (value >> 4) & 0xff;
        } else {
          fat[at] = value & 0xff;
          fat[at + 1] = (fat[at + 1]! & 0xf0) | ((value >> 8) & 0x0f);
        }
      }
    };
    const eoc = g.fatType === 12 ? 0xfff : g.fatType === 16 ? 0xffff : 0x0fffffff;
    const media = o.floppy ? 0xf0 : 0xf8;
    setFat(0, eoc);
    setFat(1, eoc);
    fat[0] = media;

    let nextCluster = 2;
    let entryCount = 0;
    const extents: Extent[] = [];
    const capacity = (g.volumeSectors / 2000).toFixed(2);
    const allocate = (clusters: number): number => {
      const begin = nextCluster;
      if (begin - 2 + clusters > g.clusterCount) {
        throw new BlockError('invalid-option', `Directory does not fit in FAT${g.fatType} (capacity ${capacity} MB)`, { option: 'dir', value: dirname });
      }
      nextCluster += clusters;
      for (let c = begin; c < begin + clusters - 1; c++) setFat(c, c + 1);
      setFat(begin + clusters - 1, eoc);
      return begin;
    };

    let root: Buffer | null = null;
    const queue: PendingDir[] = [{ host: dirname, real: rootReal, ancestors: new Set([rootReal]), owner: null, parentCluster: 0, st: rootSt }];
    while (queue.length > 0) {
      const d = queue.shift()!;
      const isRoot = d.owner === null;
      const entries: Buffer[] = [];
      const taken = new Set<string>();
      const files: Array<{ ent: Buffer; path: string; size: number }> = [];
      const subdirs: Array<{ ent: Buffer; pending: Omit<PendingDir, 'owner' | 'parentCluster'> }> = [];
      if (isRoot) {
        const vol = Buffer.alloc(32);
        labelBytes.copy(vol, 0);
        vol[11] = 0x28;
        entries.push(vol);
      } else {
        entries.push(shortEntry(Buffer.from('.          ', 'latin1'), true, d.st, 0, 0));
        entries.push(shortEntry(Buffer.from('..         ', 'latin1'), true, d.st, d.parentCluster, 0));
      }
      let names: Buffer[];
      try {
        names = (fs.readdirSync(d.host, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare);
      } catch {
        throw new BlockError('io', `Could not read directory ${d.host}`, { option: 'dir', value: d.host });
      }
      for (const raw of names) {
        const name = raw.toString('utf8');
        if (!Buffer.from(name, 'utf8').equals(raw)) {
          emitWarning(`vvfat: ${d.host}: a name that is not valid UTF-8 is left out`);
          continue;
        }
        const host = path.join(d.host, name);
        let st: fs.Stats;
        let real: string;
        try {
          real = fs.realpathSync(host);
          st = fs.statSync(real);
        } catch {
          continue; // QEMU skips what it cannot stat
        }
        if (!withinDir(real, rootReal)) continue; // a link out of DIR
        const isDir = st.isDirectory();
        if (!isDir && !st.isFile()) continue;
        if (isDir && d.ancestors.has(real)) continue; // a link to an ancestor: a loop
        if (!isDir && st.size > 0x7fffffff) {
          throw new BlockError('unsupported', `File ${host} is larger than 2GB`, { option: 'dir', value: host });
        }
        const short = shortName(name, taken);
        entries.push(...longNameEntries(name, short));
        const ent = shortEntry(short, isDir, st, 0, isDir ? 0 : st.size);
        entries.push(ent);
        if (isDir) subdirs.push({ ent, pending: { host, real, ancestors: new Set([...d.ancestors, real]), st } });
        else if (st.size > 0) files.push({ ent, path: host, size: st.size });
      }
      entryCount += entries.length;
      if (entryCount > MAX_DIR_ENTRIES) {
        throw new BlockError('unsupported', `vvfat: more than ${MAX_DIR_ENTRIES} directory entries in ${dirname}: the reference's bound on directory metadata`, { option: 'dir', value: dirname });
      }
      let myCluster = 0;
      let dirBuf: Buffer;
      if (isRoot) {
        if (entries.length > ROOT_ENTRIES) {
          throw new BlockError('unsupported', `Could not read directory ${dirname}: Too many entries in root directory`, { option: 'dir', value: dirname });
        }
        dirBuf = Buffer.alloc(ROOT_ENTRIES * 32);
        root = dirBuf;
      } else {
        const clusters = Math.max(1, Math.ceil((entries.length * 32) / CLUSTER));
        dirBuf = Buffer.alloc(clusters * CLUSTER);
        myCluster = allocate(clusters);
        extents.push({ begin: myCluster, end: myCluster + clusters, dir: dirBuf });
        d.owner!.buf.writeUInt16LE(myCluster & 0xffff, d.owner!.at + 26);
        d.owner!.buf.writeUInt16LE(myCluster >>> 16, d.owner!.at + 20);
        entries[0]!.writeUInt16LE(myCluster & 0xffff, 26);
        entries[0]!.writeUInt16LE(myCluster >>> 16, 20);
      }
      entries.forEach((e, k) => e.copy(dirBuf, k * 32));
      // entries now live in dirBuf: point the pending owners at their copies
      const offsetOf = (ent: Buffer): number => entries.indexOf(ent) * 32;
      for (const f of files) {
        const clusters = Math.ceil(f.size / CLUSTER);
        const begin = allocate(clusters);
        extents.push({ begin, end: begin + clusters, file: { path: f.path, size: f.size } });
        const at = offsetOf(f.ent);
        dirBuf.writeUInt16LE(begin & 0xffff, at + 26);
        dirBuf.writeUInt16LE(begin >>> 16, at + 20);
      }
      for (const s of subdirs) {
        queue.push({ ...s.pending, owner: { buf: dirBuf, at: offsetOf(s.ent) }, parentCluster: myCluster });
      }
    }
    extents.sort((a, b) => a.begin - b.begin);

    const head = Buffer.alloc((g.bootOffset + 1) * SECTOR);
    const bs = head.subarray(g.bootOffset * SECTOR);
    if (g.bootOffset > 0) writeMbr(head, g);
    bs[0] = 0xeb; bs[1] = 0x3e; bs[2] = 0x90;
    bs.write('MSWIN4.1', 3, 'latin1');
    bs.writeUInt16LE(SECTOR, 11);
    bs[13] = SPC;
    bs.writeUInt16LE(1, 14);
    bs[16] = 2;
    bs.writeUInt16LE(ROOT_ENTRIES, 17);
    bs.writeUInt16LE(g.volumeSectors > 0xffff ? 0 : g.volumeSectors, 19);
    bs[21] = media;
    bs.writeUInt16LE(g.sectorsPerFat, 22);
    bs.writeUInt16LE(g.sectorsPerTrack, 24);
    bs.writeUInt16LE(g.heads, 26);
    bs.writeUInt32LE(g.bootOffset, 28);
    bs.writeUInt32LE(g.volumeSectors > 0xffff ? g.volumeSectors : 0, 32);
    bs[36] = o.floppy ? 0x00 : 0x80;
    bs[38] = 0x29;
    bs.writeUInt32LE(0xfabe1afd, 39);
    labelBytes.copy(bs, 43);
    bs.write(g.fatType === 12 ? 'FAT12   ' : 'FAT16   ', 54, 'latin1');
    bs[510] = 0x55; bs[511] = 0xaa;
    const node = new VvfatNode(g, `fat:${dirname}`, head, fat, root!, extents, !o.rw);
    node.rootReal = rootReal;
    if (o.rw) node.startRw(dirname);
    return node;
  }

  private layout(): FatLayout {
    const g = this.geometry;
    return { fatType: g.fatType, bootOffset: g.bootOffset, sectorsPerFat: g.sectorsPerFat, clusterCount: g.clusterCount, sectorsPerCluster: SPC, rootEntries: ROOT_ENTRIES };
  }

  /** The overlay file (unlinked at once) and the tree as synthesised, which the first write-back compares with. */
  private startRw(dir: string): void {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vvfat-overlay-'));
    const file = path.join(tmp, 'sectors');
    const overlay = fs.openSync(file, 'w+', 0o600);
    fs.unlinkSync(file);
    fs.rmdirSync(tmp);
    const bytes = Math.ceil(this.geometry.totalSectors / 8);
    this.rw = { dir, overlay, written: new Uint8Array(bytes), dirty: new Uint8Array(bytes), pending: false, tree: [] };
    try {
      this.rw.tree = new FatVolume(this.layout(), (s, n) => this.sectors(s, n)).tree();
    } catch (e) {
      fs.closeSync(overlay);
      throw e;
    }
  }

  /** Sectors as the guest reads them now. */
  private sectors(first: number, count: number): Buffer {
    const out = Buffer.alloc(count * SECTOR);
    this.compose(out, first * SECTOR, count * SECTOR);
    return out;
  }

  /**
   * [offset, offset+length) into `out`: runs of written sectors from the
   * overlay, the rest synthesised (so a sector the guest has written never
   * makes us read the host file it came from).
   */
  private compose(out: Buffer, offset: number, length: number): void {
    const rw = this.rw;
    if (!rw) return this.fill(out, 0, offset, length);
    const end = offset + length;
    for (let s = Math.floor(offset / SECTOR); s * SECTOR < end; ) {
      const written = bit(rw.written, s);
      let e = s + 1;
      while (e * SECTOR < end && bit(rw.written, e) === written) e++;
      const from = Math.max(offset, s * SECTOR);
      const to = Math.min(end, e * SECTOR);
      if (written) fs.readSync(rw.overlay, out, from - offset, to - from, from);
      else this.fill(out, from - offset, from, to - from);
      s = e;
    }
  }

  size(): number {
    return this.geometry.totalSectors * SECTOR;
  }

  private alive(): void {
    if (this.closed) throw new BlockError('io', 'vvfat: node is closed');
  }

  /** The bytes of [offset, offset+length) of one region-bounded piece into `out` at `at`. */
  private fill(out: Buffer, at: number, offset: number, length: number): void {
    const headEnd = this.head.length;
    const fatStart = headEnd;
    const fatLen = this.fat.length;
    const rootStart = fatStart + 2 * fatLen;
    const dataStart = rootStart + this.root.length;
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      let n: number;
      if (pos < headEnd) {
        n = Math.min(end, headEnd) - pos;
        this.head.copy(out, at + pos - offset, pos, pos + n);
      } else if (pos < rootStart) {
        const inFat = (pos - fatStart) % fatLen;
        n = Math.min(end - pos, fatLen - inFat);
        this.fat.copy(out, at + pos - offset, inFat, inFat + n);
      } else if (pos < dataStart) {
        n = Math.min(end, dataStart) - pos;
        this.root.copy(out, at + pos - offset, pos - rootStart, pos - rootStart + n);
      } else {
        const rel = pos - dataStart;
        const cluster = 2 + Math.floor(rel / CLUSTER);
        const inCluster = rel % CLUSTER;
        const ext = this.extentOf(cluster);
        if (!ext) {
          // unused clusters read as zeroes: up to the next extent or the end
          const next = this.nextExtent(cluster);
          const stop = next ? dataStart + (next.begin - 2) * CLUSTER : end;
          n = Math.min(end, stop) - pos;
        } else {
          const extOff = (cluster - ext.begin) * CLUSTER + inCluster;
          const extLen = (ext.end - ext.begin) * CLUSTER;
          n = Math.min(end - pos, extLen - extOff);
          if (ext.dir) ext.dir.copy(out, at + pos - offset, extOff, extOff + n);
          else this.readFile(ext.file!, extOff, out, at + pos - offset, n);
        }
      }
      pos += n;
    }
  }

  private extentOf(cluster: number): Extent | undefined {
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.extents[mid]!;
      if (cluster < e.begin) hi = mid - 1;
      else if (cluster >= e.end) lo = mid + 1;
      else return e;
    }
    return undefined;
  }

  /** File bytes from the host, as they are now, up to the size seen at open; zeroes past it. */
  private readFile(file: { path: string; size: number }, offset: number, out: Buffer, at: number, length: number): void {
    const want = Math.max(0, Math.min(length, file.size - offset));
    if (want === 0) return;
    if (!this.fd || this.fd.path !== file.path) {
      if (this.fd) fs.closeSync(this.fd.fd);
      this.fd = null;
      try {
        // a link swapped on the host since open must not lead the read out of DIR
        const real = fs.realpathSync(file.path);
        if (!withinDir(real, this.rootReal)) {
          throw new Error(`it resolves to ${real}, outside ${this.rootReal}`);
        }
        this.fd = { path: file.path, fd: fs.openSync(real, 'r') };
      } catch (e) {
        throw new BlockError('io', `vvfat: cannot open ${file.path}: ${(e as Error).message}`, { option: 'dir', value: file.path });
      }
    }
    let done = 0;
    while (done < want) {
      const r = fs.readSync(this.fd.fd, out, at + done, want - done, offset + done);
      if (r <= 0) break;
      done += r;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.alive();
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    this.compose(out, offset, length);
    return out;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.alive();
    const rw = this.rw;
    if (!rw) throw new BlockError('read-only', 'vvfat: the image is read-only (fat:rw: writes back into the directory)', { option: 'rw' });
    checkRange(this, offset, data.length);
    if (data.length === 0) return;
    if (offset < this.head.length) {
      // QEMU's words and errno (EPERM): the MBR and the boot sector are ours, so the layout cannot move
      throw new BlockError('read-only', 'Tried to write to protected bootsector', { offset });
    }
    const first = Math.floor(offset / SECTOR);
    const last = Math.ceil((offset + data.length) / SECTOR);
    let buf = data;
    if (offset % SECTOR !== 0 || data.length % SECTOR !== 0) {
      // a partial sector: read, modify, write the whole sectors
      buf = this.sectors(first, last - first);
      data.copy(buf, offset - first * SECTOR);
    }
    for (let done = 0; done < buf.length; ) done += fs.writeSync(rw.overlay, buf, done, buf.length - done, first * SECTOR + done);
    for (let s = first; s < last; s++) {
      setBit(rw.written, s);
      setBit(rw.dirty, s);
    }
    rw.pending = true;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    const chunk = 1 << 20;
    for (let at = offset; at < offset + length; at += chunk) await this.write(at, Buffer.alloc(Math.min(chunk, offset + length - at)));
  }

  /** vvfat has no discard of its own: the range reads as zeroes afterwards */
  async discard(offset: number, length: number): Promise<void> {
    return this.writeZeroes(offset, length);
  }

  async flush(): Promise<void> {
    this.alive();
    this.writeBackNow();
  }

  /** rw: the directory made to match what the guest wrote since the last time. */
  private writeBackNow(): void {
    const rw = this.rw;
    if (!rw || !rw.pending) return;
    const volume = new FatVolume(this.layout(), (s, n) => this.sectors(s, n));
    const after = volume.tree();
    const firstData = volume.firstDataSector;
    writeBack(rw.tree, after, {
      root: rw.dir,
      rootReal: this.rootReal,
      dirty: (chain) => chain.some((c) => {
        const s0 = firstData + (c - 2) * SPC;
        for (let s = s0; s < s0 + SPC; s++) if (bit(rw.dirty, s)) return true;
        return false;
      }),
      materialise: (hostPath) => this.materialise(hostPath),
      retarget: (moves) => {
        for (const ext of this.extents) if (ext.file && moves.has(ext.file.path)) ext.file.path = moves.get(ext.file.path)!;
        this.dropFd();
      },
    }, volume);
    rw.tree = after;
    rw.dirty.fill(0);
    rw.pending = false;
  }

  /** Copy into the overlay every sector still read from this host file, and forget the file. */
  private materialise(hostPath: string): void {
    const rw = this.rw!;
    const dataStart = this.head.length + 2 * this.fat.length + this.root.length;
    for (const ext of this.extents) {
      if (ext.file?.path !== hostPath) continue;
      const s0 = (dataStart + (ext.begin - 2) * CLUSTER) / SECTOR;
      const s1 = (dataStart + (ext.end - 2) * CLUSTER) / SECTOR;
      for (let s = s0; s < s1; s++) {
        if (bit(rw.written, s)) continue;
        const one = Buffer.alloc(SECTOR);
        this.fill(one, 0, s * SECTOR, SECTOR);
        fs.writeSync(rw.overlay, one, 0, SECTOR, s * SECTOR);
        setBit(rw.written, s);
      }
    }
    this.extents = this.extents.filter((e) => e.file?.path !== hostPath);
    this.dropFd();
  }

  private dropFd(): void {
    if (this.fd) fs.closeSync(this.fd.fd);
    this.fd = null;
  }

  /**
   * Unused clusters are zero runs (so a convert skips them); the metadata and
   * the clusters of directories and files are data, with no host offset (there
   * is no one file behind them). qemu-img 7.2's map shows the whole disk as one
   * data extent instead: vvfat has no block status of its own there.
   */
  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    this.alive();
    const end = Math.min(offset + length, this.size());
    const dataStart = this.head.length + 2 * this.fat.length + this.root.length;
    const at = (n: number): BlockStatus => ({ offset, length: Math.max(0, n), data: true, zero: false, present: true, depth: 0 });
    if (offset >= end || this.rw) return at(end - offset); // rw: any sector may have been written
    if (offset < dataStart) return at(Math.min(end, dataStart) - offset);
    const cluster = 2 + Math.floor((offset - dataStart) / CLUSTER);
    const ext = this.extentOf(cluster);
    const clusterByte = (c: number): number => dataStart + (c - 2) * CLUSTER;
    if (ext) return at(Math.min(end, clusterByte(ext.end)) - offset);
    const next = this.nextExtent(cluster);
    const stop = next ? Math.min(end, clusterByte(next.begin)) : end;
    return { offset, length: stop - offset, data: false, zero: true, present: true, depth: 0 };
  }

  /** The first extent that begins after `cluster`. */
  private nextExtent(cluster: number): Extent | undefined {
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.extents[mid]!.begin > cluster) hi = mid;
      else lo = mid + 1;
    }
    return this.extents[lo];
  }

  async truncate(size: number): Promise<void> {
    if (size !== this.size()) throw new BlockError('unsupported', 'vvfat: Cannot resize a virtual FAT disk', { option: 'size' });
  }

  /** no host allocation to report: qemu-img shows "disk size: unavailable" */
  async allocatedSize(): Promise<number> {
    return Number.NaN;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.writeBackNow();
    } finally {
      this.dropFd();
      if (this.rw) fs.closeSync(this.rw.overlay);
      this.closed = true;
    }
  }
}

function chs(sector: number, g: VvfatGeometry): { bytes: number[]; overflow: boolean } {
  const s = sector % g.sectorsPerTrack;
  const rest = Math.floor(sector / g.sectorsPerTrack);
  const h = rest % g.heads;
  const c = Math.floor(rest / g.heads);
  if (c >= g.cylinders) return { bytes: [0xff, 0xff, 0xff], overflow: true };
  return { bytes: [h, ((s + 1) | ((c >> 8) << 6)) & 0xff, c & 0xff], overflow: false };
}

/** QEMU's MBR: NT disk signature, one bootable partition from the boot sector to the end. */
function writeMbr(head: Buffer, g: VvfatGeometry): void {
  head.writeUInt32LE(0xbe1afdfa, 0x1b8);
  const p = 0x1be;
  head[p] = 0x80;
  const start = chs(g.bootOffset, g);
  const end = chs(g.totalSectors - 1, g);
  Buffer.from(start.bytes).copy(head, p + 1);
  Buffer.from(end.bytes).copy(head, p + 5);
  const lba = start.overflow || end.overflow;
  head[p + 4] = g.fatType === 12 ? 0x01 : g.fatType === 16 ? (lba ? 0x0e : 0x06) : lba ? 0x0c : 0x0b;
  head.writeUInt32LE(g.bootOffset, p + 8);
  head.writeUInt32LE(g.volumeSectors, p + 12);
  head[510] = 0x55; head[511] = 0xaa;
}
