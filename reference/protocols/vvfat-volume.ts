/**
 * Reading back the FAT volume a guest has written to a vvfat disk: the first
 * FAT, the root directory and every subdirectory, with VFAT long names, as a
 * tree of entries with their cluster chains. vvfat's rw mode compares this
 * tree with the one it synthesised to learn what the guest changed.
 *
 * The layout is the one vvfat itself chose (VvfatGeometry), never the guest's
 * boot sector: writes to the boot sector are refused, so the geometry cannot
 * change under us, and a hostile BPB cannot make this parser read elsewhere.
 *
 * Everything here is guest-controlled, so every fact is checked before it is
 * believed: clusters in range, chains that end, no cluster in two chains (which
 * also catches loops and a directory that contains an ancestor), file sizes
 * that fit their chains, names that cannot leave the directory, no two entries
 * of one name, and bounds on the entry count and the depth. A check that fails
 * is a BlockError naming the entry and what is wrong with it; nothing is
 * guessed or repaired.
 */
import { BlockError } from '../errors.js';

/** One file or directory as the FAT volume describes it. */
export interface FatEntry {
  /** the host name: the long name when there is a valid one, else the 8.3 name with its NT case bits */
  name: string;
  dir: boolean;
  /** first cluster; 0 for an empty file */
  cluster: number;
  /** bytes, from the directory entry (0 for a directory) */
  size: number;
  /** the clusters of the entry's data in order */
  chain: number[];
  children: FatEntry[];
}

export interface FatLayout {
  fatType: 12 | 16 | 32;
  /** sector of the boot sector (the volume's first sector) on the disk */
  bootOffset: number;
  sectorsPerFat: number;
  clusterCount: number;
  sectorsPerCluster: number;
  rootEntries: number;
}

/** Synchronous sector reads of the disk as the guest sees it now. */
export type SectorReader = (sector: number, count: number) => Buffer;

/** a path of at most this many directories below the root */
export const MAX_DEPTH = 64;
const MAX_ENTRIES = 1 << 20;

function corrupt(where: string, what: string, value?: unknown): BlockError {
  return new BlockError('corrupt', `vvfat: ${where}: ${what}`, { field: 'directory entry', value });
}

export class FatVolume {
  private readonly fat: Buffer;
  /** which clusters a chain has claimed already: a second claim is a cross-link or a loop */
  private readonly claimed: Uint8Array;
  private entries = 0;
  readonly firstDataSector: number;

  constructor(readonly layout: FatLayout, private readonly read: SectorReader) {
    this.fat = read(layout.bootOffset + 1, layout.sectorsPerFat);
    this.claimed = new Uint8Array(layout.clusterCount + 2);
    this.firstDataSector = layout.bootOffset + 1 + 2 * layout.sectorsPerFat + (layout.rootEntries * 32) / 512;
  }

  /** The tree below the root directory; once per volume (the chains it claims stay claimed). */
  tree(): FatEntry[] {
    const l = this.layout;
    return this.directory(this.read(l.bootOffset + 1 + 2 * l.sectorsPerFat, (l.rootEntries * 32) / 512), '/', 0);
  }

  /** The FAT's entry for `cluster`. */
  next(cluster: number): number {
    const t = this.layout.fatType;
    if (t === 32) return this.fat.readUInt32LE(cluster * 4) & 0x0fffffff;
    if (t === 16) return this.fat.readUInt16LE(cluster * 2);
    const at = Math.floor((cluster * 3) / 2);
    const pair = this.fat.readUInt16LE(at);
    return cluster & 1 ? pair >> 4 : pair & 0x0fff;
  }

  private isEnd(value: number): boolean {
    const t = this.layout.fatType;
    return value >= (t === 12 ? 0xff8 : t === 16 ? 0xfff8 : 0x0ffffff8);
  }

  /** The chain from `first`, every cluster checked and claimed. */
  chain(first: number, where: string): number[] {
    const out: number[] = [];
    let c = first;
    for (;;) {
      if (c < 2 || c >= this.layout.clusterCount + 2) {
        throw corrupt(where, `cluster ${c} is outside the volume's clusters 2..${this.layout.clusterCount + 1}`, c);
      }
      if (this.claimed[c]) throw corrupt(where, `cluster ${c} is already part of another chain (or of this one: a loop)`, c);
      this.claimed[c] = 1;
      out.push(c);
      const n = this.next(c);
      if (this.isEnd(n)) return out;
      if (n === 0) throw corrupt(where, `cluster ${c} is in a chain but marked free in the FAT`, c);
      c = n;
    }
  }

  /** The bytes of a chain's clusters. */
  clusters(chain: number[]): Buffer {
    const spc = this.layout.sectorsPerCluster;
    return Buffer.concat(chain.map((c) => this.read(this.firstDataSector + (c - 2) * spc, spc)));
  }

  private directory(buf: Buffer, where: string, depth: number): FatEntry[] {
    const out: FatEntry[] = [];
    const names = new Set<string>();
    let long: { parts: string[]; sum: number; expect: number } | null = null;
    for (let at = 0; at + 32 <= buf.length; at += 32) {
      const first = buf[at]!;
      if (first === 0x00) break; // the end of the directory
      if (first === 0xe5) {
        long = null; // a deleted entry, and any long name before it goes with it
        continue;
      }
      const attr = buf[at + 11]!;
      if (attr === 0x0f) {
        long = this.longPart(buf, at, long);
        continue;
      }
      const short = buf.subarray(at, at + 11);
      const pending = long;
      long = null;
      if (attr & 0x08) continue; // the volume label
      if (short.equals(DOT) || short.equals(DOTDOT)) continue;
      if (++this.entries > MAX_ENTRIES) throw corrupt(where, `more than ${MAX_ENTRIES} directory entries`);
      const name = pending && pending.expect === 0 && pending.sum === checksum(short) ? pending.parts.join('') : shortName(buf, at);
      const path = `${where}${name}`;
      checkName(name, where);
      if (names.has(name)) throw corrupt(path, 'a second entry of the same name in one directory', name);
      names.add(name);
      const dir = (attr & 0x10) !== 0;
      const hi = this.layout.fatType === 32 ? buf.readUInt16LE(at + 20) : 0;
      const cluster = (hi << 16) | buf.readUInt16LE(at + 26);
      const size = dir ? 0 : buf.readUInt32LE(at + 28);
      const entry: FatEntry = { name, dir, cluster, size, chain: [], children: [] };
      if (dir) {
        if (depth + 1 > MAX_DEPTH) throw corrupt(path, `directories nested deeper than ${MAX_DEPTH}`);
        if (cluster === 0) throw corrupt(path, 'a directory without a cluster');
        entry.chain = this.chain(cluster, path);
        entry.children = this.directory(this.clusters(entry.chain), `${path}/`, depth + 1);
      } else if (size > 0 || cluster !== 0) {
        entry.chain = this.chain(cluster, path);
        const room = entry.chain.length * this.layout.sectorsPerCluster * 512;
        if (size > room) throw corrupt(path, `size ${size} does not fit its ${entry.chain.length} clusters (${room} bytes)`, size);
      }
      out.push(entry);
    }
    return out;
  }

  /** One long-name entry: parts come last first, numbered down to 1, each with the short name's checksum. */
  private longPart(buf: Buffer, at: number, long: { parts: string[]; sum: number; expect: number } | null): { parts: string[]; sum: number; expect: number } | null {
    const seq = buf[at]! & 0x1f;
    const sum = buf[at + 13]!;
    if (buf[at]! & 0x40) long = { parts: [], sum, expect: seq };
    if (!long || seq === 0 || seq !== long.expect || sum !== long.sum) return null; // an orphan part: the short name stands alone
    const units: number[] = [];
    for (const off of LFN_OFFSETS) units.push(buf.readUInt16LE(at + off));
    const end = units.indexOf(0);
    long.parts.unshift(String.fromCharCode(...(end >= 0 ? units.slice(0, end) : units)));
    long.expect = seq - 1;
    return long;
  }
}

const DOT = Buffer.from('.          ', 'latin1');
const DOTDOT = Buffer.from('..         ', 'latin1');
/** byte offsets of a long-name entry's 13 UTF-16 units */
const LFN_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

function checksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + short[i]!) & 0xff;
  return sum;
}

/** The 8.3 name as a file name: base and extension trimmed, lower-cased where the NT case bits (byte 12) say so. */
function shortName(buf: Buffer, at: number): string {
  const bytes = Buffer.from(buf.subarray(at, at + 11));
  if (bytes[0] === 0x05) bytes[0] = 0xe5; // 0x05 stands for a leading 0xe5, which would mean "deleted"
  const flags = buf[at + 12]!;
  let base = bytes.subarray(0, 8).toString('latin1').trimEnd();
  let ext = bytes.subarray(8, 11).toString('latin1').trimEnd();
  if (flags & 0x08) base = base.toLowerCase();
  if (flags & 0x10) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}

/**
 * A name is written back as one path component of the host directory, so it
 * must be one: not empty, not "." or "..", no separator, no NUL, and short
 * enough for the host.
 */
function checkName(name: string, where: string): void {
  const unsafe = name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || Buffer.byteLength(name, 'utf8') > 255;
  if (unsafe) {
    throw new BlockError('corrupt', `vvfat: ${where}: the entry named ${JSON.stringify(name)} is not a single file name; writing it back could leave the directory`, { field: 'name', value: name });
  }
}
