/**
 * vmdk files for the steps: the files an image consists of (descriptor and
 * extents), a comparison of two images' files outside their CIDs, and hostile
 * images made from a valid one that real qemu-img wrote.
 *
 * QEMU writes the CID as unpadded hex, so a CID of fewer digits shifts the rest
 * of the descriptor: descriptors are compared as text with CID values (and the
 * image's own name in extent lines) replaced, everything else byte for byte.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';

const DESC_AT = 0x200;
const DESC_SIZE = 20 * 512;

function isSparse(buf: Buffer): boolean {
  return buf.length >= 4 && buf.toString('latin1', 0, 4) === 'KDMV';
}

function textUpToNul(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul < 0 ? buf.length : nul);
}

/** The descriptor text of an image file (embedded or the whole file), bounded at 1 MiB. */
export async function descriptorOf(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(DESC_AT + DESC_SIZE);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (isSparse(head.subarray(0, bytesRead))) return textUpToNul(head.subarray(DESC_AT, bytesRead));
    const text = Buffer.alloc(1 << 20);
    const r = await fh.read(text, 0, text.length, 0);
    return textUpToNul(text.subarray(0, r.bytesRead));
  } finally {
    await fh.close();
  }
}

/** The extent file names a descriptor lists, in order. */
export function extentNames(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^RW\s+\d+\s+\S+\s+"([^"\n]+)"/gm)) out.push(m[1]);
  return out;
}

function normalise(text: string, ownName: string): string {
  const stem = ownName.replace(/\.[^.]*$/, '');
  return text.replace(/CID=[0-9a-f]+/g, 'CID=*').split(stem).join('IMAGE');
}

/** Differences between two vmdk images (each with its extents) outside CIDs and their own names. */
export async function vmdkDifferences(a: string, b: string): Promise<string[]> {
  const out: string[] = [];
  const [ta, tb] = [await descriptorOf(a), await descriptorOf(b)];
  if (normalise(ta, basename(a)) !== normalise(tb, basename(b))) out.push(`descriptors differ:\n${ta}\n---\n${tb}`);
  const [xa, xb] = [await readFile(a), await readFile(b)];
  if (isSparse(xa) || isSparse(xb)) {
    // outside the descriptor area the sparse files must be identical
    if (xa.length !== xb.length) out.push(`${basename(a)} and ${basename(b)}: lengths ${xa.length} and ${xb.length}`);
    else {
      const end = DESC_AT + DESC_SIZE;
      if (!xa.subarray(0, DESC_AT).equals(xb.subarray(0, DESC_AT)) || !xa.subarray(end).equals(xb.subarray(end))) {
        out.push(`${basename(a)} and ${basename(b)} differ outside the descriptor`);
      }
    }
  }
  const [ea, eb] = [extentNames(ta), extentNames(tb)];
  if (ea.length !== eb.length) return [...out, `extent counts ${ea.length} and ${eb.length}`];
  for (let i = 0; i < ea.length; i++) {
    if (ea[i] === basename(a)) continue; // the image's own extent, compared above
    const [fa, fb] = [await readFile(join(dirname(a), ea[i])), await readFile(join(dirname(b), eb[i]))];
    if (!fa.equals(fb)) out.push(`extent ${i + 1} (${ea[i]} and ${eb[i]}) differs`);
  }
  return out;
}

// --- hostile images ---

export interface VmdkDefect {
  /** words any one of which names the defect in an error message */
  words: string[];
  base: 'sparse' | 'stream';
  apply(path: string): Promise<void>;
}

const le32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const le64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };

async function put(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

/** Replace the embedded descriptor's text (zero padded in its 20 sectors). */
async function rewriteEmbedded(path: string, edit: (t: string) => string): Promise<void> {
  const text = edit(await descriptorOf(path));
  const area = Buffer.alloc(DESC_SIZE);
  area.write(text, 0, 'latin1');
  await put(path, DESC_AT, area);
}

/** Make the image a descriptor file listing `lines` (its old sparse content goes). */
async function asDescriptorFile(path: string, lines: string): Promise<void> {
  const head = '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\n';
  await writeFile(path, head + lines + '\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\n');
}

// The sparse base: qemu-img create -f vmdk 8M, 64 KiB written at 64 KiB (the stream base: at 0). Header at 0, redundant GD at
// sector 21 (its grain table at 22), GD at sector 26 (its grain table at 27), the written grain at 64 KiB.
const DEFECTS: Record<string, VmdkDefect> = {
  'grain directory lies past the end of the file': {
    words: ['grain directory', 'gd_offset'], base: 'sparse',
    apply: async (p) => { await put(p, 0x38, le64(1n << 30n)); await put(p, 0x30, le64(1n << 30n)); },
  },
  'grain size is 2^22 sectors': { words: ['granularity'], base: 'sparse', apply: (p) => put(p, 0x14, le64(1n << 22n)) },
  'capacity is 2^42 sectors': { words: ['L1 size', 'capacity'], base: 'sparse', apply: (p) => put(p, 0x0c, le64(1n << 42n)) },
  'version is 4': { words: ['version'], base: 'sparse', apply: (p) => put(p, 0x04, le32(4)) },
  'first grain table lies past the end of the file': {
    words: ['grain table'], base: 'sparse',
    apply: async (p) => { await put(p, 26 * 512, le32(1 << 24)); await put(p, 21 * 512, le32(1 << 24)); },
  },
  'grain lies past the end of the file': {
    words: ['after EOF'], base: 'sparse',
    // grain 3 (guest 192 KiB) in both grain tables, at sector 100000 of a 256-sector file
    apply: async (p) => { await put(p, 22 * 512 + 12, le32(100000)); await put(p, 27 * 512 + 12, le32(100000)); },
  },
  'grain table entries per table are 4096': { words: ['L2 table size', 'num_gtes_per_gt'], base: 'sparse', apply: (p) => put(p, 0x2c, le32(4096)) },
  'createType is monolithicFoo': {
    words: ['monolithicFoo'], base: 'sparse',
    apply: (p) => asDescriptorFile(p, 'RW 16384 FLAT "flat.vmdk" 0\n').then(() => rewriteText(p, (t) => t.replace('monolithicFlat', 'monolithicFoo'))),
  },
  'extent is named by an absolute path': {
    words: ['absolute', 'outside'], base: 'sparse',
    apply: async (p) => { await writeFile(join(dirname(p), 'elsewhere.raw'), Buffer.alloc(8192)); await asDescriptorFile(p, `RW 16 FLAT "${join(dirname(p), 'elsewhere.raw')}" 0\n`); },
  },
  'extent lies outside its directory': {
    words: ['outside', 'traversal'], base: 'sparse',
    apply: async (p) => { await writeFile(join(dirname(p), 'elsewhere.raw'), Buffer.alloc(8192)); await asDescriptorFile(p, `RW 16 FLAT "../${basename(dirname(p))}/elsewhere.raw" 0\n`); },
  },
  'descriptor lists 10^6 extents': {
    words: ['extents'], base: 'sparse',
    apply: async (p) => { await writeFile(join(dirname(p), 'one.raw'), Buffer.alloc(512)); await asDescriptorFile(p, 'RW 1 FLAT "one.raw" 0\n'.repeat(1_000_000)); },
  },
  'parent is the image itself': {
    words: ['loop'], base: 'sparse',
    apply: (p) => rewriteEmbedded(p, (t) => t.replace(/(createType="[^"]*"\n)/, `$1parentFileNameHint="${basename(p)}"`)),
  },
  'compressed grain claims 2^30 bytes': {
    words: ['grain', 'marker'], base: 'stream',
    // the stream base's one grain (guest 0..64 KiB) is the first thing after the tables, at 64 KiB
    apply: (p) => put(p, 65536 + 8, le32(1 << 30)),
  },
};

async function rewriteText(path: string, edit: (t: string) => string): Promise<void> {
  await writeFile(path, edit(await readFile(path, 'latin1')), 'latin1');
}

/** Defects whose image qemu 7.2 does not bound (it opens every extent, follows the loop): qemu takes minutes. */
export const UNBOUNDED_IN_QEMU = new Set(['descriptor lists 10^6 extents', 'parent is the image itself']);

export function vmdkDefect(description: string): VmdkDefect {
  const d = DEFECTS[description];
  if (!d) throw new Error(`no vmdk defect "${description}"; known: ${Object.keys(DEFECTS).join('; ')}`);
  return d;
}

/** The valid image a defect starts from, made by qemu-img and qemu-io so it is the same for every IUT. */
export async function makeVmdkBase(base: VmdkDefect['base'], path: string): Promise<void> {
  const opts = base === 'stream' ? ['-o', 'subformat=streamOptimized'] : [];
  await execa('qemu-img', ['create', '-q', '-f', 'vmdk', ...opts, path, '8M'], { timeout: 60_000, stdin: 'ignore' });
  // (the stream base's grain is the first, so opening, which reads guest byte 0, inflates it)
  await execa('qemu-io', ['-f', 'vmdk', '-c', base === 'stream' ? 'write -P 0x11 0 64k' : 'write -P 0x11 64k 64k', path], { timeout: 60_000, stdin: 'ignore' });
}
