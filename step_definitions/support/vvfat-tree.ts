/**
 * Directory trees for the vvfat checks, and the tools that judge a FAT image:
 * fsck.fat -n on the FAT volume, and mtools (mcopy -s) to extract it. A tree
 * is deterministic: names, nesting and contents follow from the file's index.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execa } from 'execa';
import type { BlockNode } from '../../reference/node.js';

const NAMES = ['readme', 'Notes.TXT', 'a.b.c', 'Long File Name number', 'data.json', 'x', 'MixedCase.Md', 'spaces in name.log', 'tail~1.txt', 'UPPER.BIN'];

/** A tree of `count` files in nested directories (up to three levels), a few of them empty. */
export function makeTree(root: string, count: number): void {
  fs.mkdirSync(root, { recursive: true });
  for (let i = 0; i < count; i++) {
    const depth = i % 4;
    const parts: string[] = [];
    for (let d = 0; d < depth; d++) parts.push(d === 0 ? `dir${(i >> 2) % 5}` : `Sub Directory ${d}.${(i >> 4) % 3}`);
    const dir = path.join(root, ...parts);
    fs.mkdirSync(dir, { recursive: true });
    const name = `${i}-${NAMES[i % NAMES.length]}`;
    const size = i % 17 === 0 ? 0 : (i * 7919) % 24_000 + (i % 3) * 8192;
    const buf = Buffer.alloc(size);
    let x = (i * 2654435761) >>> 0;
    for (let k = 0; k < size; k++) {
      x = (x * 1103515245 + 12345) >>> 0;
      buf[k] = x >>> 24;
    }
    fs.writeFileSync(path.join(dir, name), buf);
  }
  fs.mkdirSync(path.join(root, 'empty dir'), { recursive: true });
}

/** Every file and directory under root: relative path to its content (null for a directory). */
export function listTree(root: string): Map<string, Buffer | null> {
  const out = new Map<string, Buffer | null>();
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.set(r, null);
        walk(r);
      } else out.set(r, fs.readFileSync(path.join(root, r)));
    }
  };
  walk('');
  return out;
}

/** What differs between two trees, as lines ("" when they are the same). */
export function diffTrees(want: Map<string, Buffer | null>, got: Map<string, Buffer | null>): string {
  const lines: string[] = [];
  for (const [k, v] of want) {
    if (!got.has(k)) lines.push(`missing: ${k}`);
    else {
      const g = got.get(k)!;
      if ((v === null) !== (g === null)) lines.push(`kind differs: ${k}`);
      else if (v && g && !v.equals(g)) lines.push(`content differs: ${k} (${v.length} vs ${g.length} bytes)`);
    }
  }
  for (const k of got.keys()) if (!want.has(k)) lines.push(`unexpected: ${k}`);
  return lines.join('\n');
}

// (shared with the mtools adapter, which must find the volume the same way)
export { volumeOffset } from '../../adapters/tools/fat-volume.js';
import { volumeOffset } from '../../adapters/tools/fat-volume.js';

export interface BootSector {
  sectorsPerCluster: number;
  rootEntries: number;
  totalSectors: number;
  sectorsPerFat: number;
  media: number;
  label: string;
  typeString: string;
  clusters: number;
}

export function bootSector(image: string): BootSector {
  const fd = fs.openSync(image, 'r');
  try {
    const b = Buffer.alloc(512);
    fs.readSync(fd, b, 0, 512, volumeOffset(image));
    const totalSectors = b.readUInt16LE(19) || b.readUInt32LE(32);
    const spf = b.readUInt16LE(22);
    const rootEntries = b.readUInt16LE(17);
    const spc = b[13]!;
    const data = b.readUInt16LE(14) + b[16]! * spf + Math.ceil((rootEntries * 32) / 512);
    return {
      sectorsPerCluster: spc, rootEntries, totalSectors, sectorsPerFat: spf, media: b[21]!,
      label: b.toString('latin1', 43, 54), typeString: b.toString('latin1', 54, 62), clusters: Math.floor((totalSectors - data) / spc),
    };
  } finally {
    fs.closeSync(fd);
  }
}

/** fsck.fat -n on the image's FAT volume (copied out sparsely when it sits behind an MBR). */
export async function fsckFat(image: string, scratch: string): Promise<{ ok: boolean; output: string }> {
  const off = volumeOffset(image);
  let vol = image;
  if (off > 0) {
    vol = path.join(scratch, `volume-${path.basename(image)}`);
    const r = await execa('dd', [`if=${image}`, `of=${vol}`, 'bs=1M', 'iflag=skip_bytes', `skip=${off}`, 'conv=sparse', 'status=none'], { reject: false, timeout: 60_000 });
    if (r.exitCode !== 0) return { ok: false, output: `dd: ${r.stderr}` };
  }
  const r = await execa('fsck.fat', ['-n', vol], { reject: false, timeout: 60_000, all: true });
  if (vol !== image) fs.rmSync(vol, { force: true });
  return { ok: r.exitCode === 0, output: String(r.all ?? '') };
}

/** mcopy -s of the whole FAT volume into `out` (a new directory). */
export async function extractFat(image: string, out: string): Promise<void> {
  fs.mkdirSync(out, { recursive: true });
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '' };
  const at = `${image}@@${volumeOffset(image)}`;
  const r = await execa('mcopy', ['-s', '-n', '-p', '-m', '-i', at, '::*', out], { reject: false, timeout: 60_000, env, all: true });
  // an empty volume has nothing for ::* to match
  if (r.exitCode !== 0 && !/not found/i.test(String(r.all))) throw new Error(`mcopy -s failed (exit ${r.exitCode}): ${String(r.all)}`);
}

/** The volume label mtools reads (mlabel -s), trimmed. */
export async function fatLabel(image: string): Promise<string> {
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  const r = await execa('mlabel', ['-s', '-i', `${image}@@${volumeOffset(image)}`, '::'], { reject: false, timeout: 30_000, env, all: true });
  const m = /Volume label is (.*)$/m.exec(String(r.all));
  return m ? m[1]!.trim() : '';
}

/**
 * The node's disk into a sparse file of the disk's size: all-zero megabytes are left as
 * holes, and so is everything past `prefix` bytes (for callers that only look at the start).
 */
export async function dumpNode(node: BlockNode, file: string, prefix = node.size()): Promise<void> {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = 1 << 20;
    const end = Math.min(prefix, node.size());
    for (let off = 0; off < end; off += chunk) {
      const b = await node.read(off, Math.min(chunk, end - off));
      if (b.some((x) => x !== 0)) fs.writeSync(fd, b, 0, b.length, off);
    }
    fs.ftruncateSync(fd, node.size());
  } finally {
    fs.closeSync(fd);
  }
}
