/**
 * What a guest does to a vvfat disk, made without a guest: mtools edits a raw
 * copy of the disk as a FAT driver would, or a directory entry is forged by
 * hand; the sectors that differ from the disk as the implementation showed it
 * are then written back through fat:rw: in the order of the disk, one write
 * per run of changed sectors, as a guest's page cache would flush them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execa } from 'execa';
import { bootSector, volumeOffset } from './vvfat-tree.js';

const SECTOR = 512;

/** The bytes mcopy puts in a file it copies in: a pattern of the name, so two files differ. */
export function fileBytes(name: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + name.length * 13 + 1) & 0xff;
  return b;
}

/**
 * Apply edits written as mtools verbs with our arguments, separated by ";":
 * `mcopy NAME BYTES` (a new or overwritten file), `mdel NAME`, `mren OLD NEW`,
 * `mmove OLD NEW`, `mmd NAME`, `mrd NAME`. Names are paths in the volume.
 */
export async function editWithMtools(image: string, edits: string, scratch: string): Promise<void> {
  const vol = `${image}@@${volumeOffset(image)}`;
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  for (const edit of edits.split(';').map((e) => e.trim()).filter(Boolean)) {
    const [verb, ...args] = edit.split(/\s+/);
    let argv: string[];
    switch (verb) {
      case 'mcopy': {
        const [name, bytes] = args;
        const src = path.join(scratch, `mcopy-${path.basename(name!)}`);
        fs.writeFileSync(src, fileBytes(name!, Number(bytes)));
        argv = ['-o', '-i', vol, src, `::${name}`];
        break;
      }
      case 'mdel': case 'mmd': case 'mrd':
        argv = ['-i', vol, `::${args[0]}`];
        break;
      case 'mren': case 'mmove':
        argv = ['-i', vol, `::${args[0]}`, `::${args[1]}`];
        break;
      default:
        throw new Error(`unknown mtools edit "${edit}" (mcopy NAME BYTES, mdel, mren, mmove, mmd, mrd)`);
    }
    const r = await execa(verb, argv, { reject: false, timeout: 60_000, env, all: true });
    if (r.exitCode !== 0) throw new Error(`${verb} ${argv.join(' ')} failed: ${String(r.all)}`);
  }
}

/** The runs of 512-byte sectors in which two equally long images differ. */
export function changedRuns(a: string, b: string): Array<{ offset: number; length: number }> {
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  const runs: Array<{ offset: number; length: number }> = [];
  try {
    const size = fs.fstatSync(fa).size;
    if (fs.fstatSync(fb).size !== size) throw new Error(`${b} is not as long as ${a}`);
    const chunk = 1 << 20;
    const ba = Buffer.alloc(chunk);
    const bb = Buffer.alloc(chunk);
    let start = -1;
    for (let off = 0; off < size; off += chunk) {
      const n = fs.readSync(fa, ba, 0, chunk, off);
      fs.readSync(fb, bb, 0, chunk, off);
      for (let s = 0; s < n; s += SECTOR) {
        const differs = ba.compare(bb, s, s + SECTOR, s, s + SECTOR) !== 0;
        if (differs && start < 0) start = off + s;
        if (!differs && start >= 0) {
          runs.push({ offset: start, length: off + s - start });
          start = -1;
        }
      }
    }
    if (start >= 0) runs.push({ offset: start, length: size - start });
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
  return runs;
}

/** Copy [offset, offset+length) of an image into a file of its own (the source of a qemu-io write -s). */
export function cutOut(image: string, offset: number, length: number, to: string): void {
  const fd = fs.openSync(image, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    fs.writeFileSync(to, b);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Forge a file entry into the root directory the way a hostile guest would:
 * VFAT long-name entries carrying `name` verbatim (separators and all), an 8.3
 * entry, and the data in the first free cluster, marked in both FATs. Only
 * FAT16 volumes (vvfat's hard-disk default).
 */
export function forgeRootEntry(image: string, name: string, data: Buffer): void {
  const vol = volumeOffset(image);
  const bs = bootSector(image);
  const fd = fs.openSync(image, 'r+');
  try {
    const fatAt = vol + SECTOR;
    const fatLen = bs.sectorsPerFat * SECTOR;
    const rootAt = fatAt + 2 * fatLen;
    const dataAt = rootAt + bs.rootEntries * 32;
    const fat = Buffer.alloc(fatLen);
    fs.readSync(fd, fat, 0, fatLen, fatAt);
    let cluster = 2;
    while (fat.readUInt16LE(cluster * 2) !== 0) cluster++;
    fat.writeUInt16LE(0xffff, cluster * 2);
    fs.writeSync(fd, fat, 0, fatLen, fatAt);
    fs.writeSync(fd, fat, 0, fatLen, fatAt + fatLen);
    const clusterBytes = bs.sectorsPerCluster * SECTOR;
    const body = Buffer.alloc(clusterBytes);
    data.copy(body);
    fs.writeSync(fd, body, 0, clusterBytes, dataAt + (cluster - 2) * clusterBytes);

    const root = Buffer.alloc(bs.rootEntries * 32);
    fs.readSync(fd, root, 0, root.length, rootAt);
    const short = Buffer.from('FORGED  TXT', 'latin1');
    const entries = [...longEntries(name, short), shortEntry(short, cluster, data.length)];
    let free = 0;
    while (free < bs.rootEntries && root[free * 32] !== 0 && root[free * 32] !== 0xe5) free++;
    if (free + entries.length > bs.rootEntries) throw new Error('no room in the root directory to forge an entry');
    entries.forEach((e, i) => e.copy(root, (free + i) * 32));
    fs.writeSync(fd, root, 0, root.length, rootAt);
  } finally {
    fs.closeSync(fd);
  }
}

function shortEntry(short: Buffer, cluster: number, size: number): Buffer {
  const e = Buffer.alloc(32);
  short.copy(e);
  e[11] = 0x20;
  e.writeUInt16LE(cluster, 26);
  e.writeUInt32LE(size, 28);
  return e;
}

function longEntries(name: string, short: Buffer): Buffer[] {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + short[i]!) & 0xff;
  const units = [...Buffer.from(name, 'utf16le').values()];
  const chars: number[] = [];
  for (let i = 0; i < units.length; i += 2) chars.push(units[i]! | (units[i + 1]! << 8));
  chars.push(0);
  while (chars.length % 13) chars.push(0xffff);
  const count = chars.length / 13;
  const offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
  const out: Buffer[] = [];
  for (let n = count; n >= 1; n--) {
    const e = Buffer.alloc(32);
    e[0] = n | (n === count ? 0x40 : 0);
    e[11] = 0x0f;
    e[13] = sum;
    offsets.forEach((off, k) => e.writeUInt16LE(chars[(n - 1) * 13 + k]!, off));
    out.push(e);
  }
  return out;
}
