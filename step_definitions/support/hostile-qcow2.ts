/**
 * Defective ("hostile") qcow2 images: a valid small image made by real qemu-img,
 * then one header field patched. Each defect is named by the words a scenario
 * uses after "a qcow2 image whose ...", and names the header field an honest
 * implementation's error should point at.
 */
import { stat } from 'node:fs/promises';
import { execa } from 'execa';
import { HEADER, INCOMPAT_CORRUPT, readAt, readField, writeAt, writeField, type HeaderField } from './qcow2-header.js';

export interface Defect {
  /** the field the defect is in */
  field: HeaderField | 'backing file name' | 'bitmap directory';
  apply(path: string): Promise<void>;
}

/**
 * Words that name a field in an error message: the header field's own name, or the
 * plain words the qcow2 specification uses for it ("L1 table offset").
 */
export const FIELD_NAMES: Record<Defect['field'], string[]> = {
  magic: ['magic', 'not in qcow2 format', 'not a qcow2 image'],
  version: ['version'],
  backing_file_offset: ['backing_file_offset', 'backing file offset'],
  backing_file_size: ['backing_file_size', 'backing file name'],
  cluster_bits: ['cluster_bits', 'cluster size'],
  size: ['size'],
  crypt_method: ['crypt_method', 'encryption method'],
  l1_size: ['l1_size', 'l1 table'],
  l1_table_offset: ['l1_table_offset', 'l1 table offset'],
  refcount_table_offset: ['refcount_table_offset', 'reference count table offset'],
  refcount_table_clusters: ['refcount_table_clusters', 'refcount table', 'reference count table'],
  nb_snapshots: ['nb_snapshots', 'snapshot table', 'snapshots'],
  snapshots_offset: ['snapshots_offset', 'snapshot table'],
  incompatible_features: ['incompatible_features', 'incompatible feature'],
  compatible_features: ['compatible_features'],
  autoclear_features: ['autoclear_features'],
  refcount_order: ['refcount_order', 'refcount width', 'reference count entry width', 'refcount bits'],
  header_length: ['header_length', 'header length', 'header too short'],
  'backing file name': ['backing file', 'loop'],
  'bitmap directory': ['bitmap directory', 'bitmap'],
};

const GiB = 2 ** 30;

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

async function clusterSize(path: string): Promise<number> {
  return 2 ** Number(await readField(path, 'cluster_bits'));
}

/** Where we put a backing file name: inside cluster 0, well after header and extensions. */
const NAME_AT = 0x1000;

async function setBackingName(path: string, name: Buffer, offset = NAME_AT): Promise<void> {
  await writeAt(path, offset, name);
  await writeField(path, 'backing_file_offset', BigInt(offset));
  await writeField(path, 'backing_file_size', BigInt(name.length));
}

const set = (field: HeaderField, value: (path: string) => Promise<bigint> | bigint): Defect => ({
  field,
  apply: async (path) => writeField(path, field, await value(path)),
});

/** The catalogue: the text after "whose" in a scenario -> the defect. */
export const DEFECTS: Record<string, Defect> = {
  'magic is wrong': set('magic', () => 0x51464900n),
  'version is 1': set('version', () => 1n),
  'version is 4': set('version', () => 4n),
  'cluster_bits is 8': set('cluster_bits', () => 8n),
  'cluster_bits is 22': set('cluster_bits', () => 22n),
  'cluster_bits is 63': set('cluster_bits', () => 63n),
  'size is 2^62 bytes': set('size', () => 1n << 62n),
  'crypt_method is 7': set('crypt_method', () => 7n),
  'l1_table_offset points past the end of the file': set('l1_table_offset', async (p) => BigInt((await fileSize(p)) + 16 * (await clusterSize(p)))),
  'l1_table_offset overlaps the header': set('l1_table_offset', () => 0n),
  'l1_table_offset is not cluster aligned': set('l1_table_offset', async (p) => BigInt(3 * (await clusterSize(p)) + 8)),
  'l1_size needs more than the file holds': set('l1_size', () => BigInt(2 ** 24)),
  'l1_size is 2^31': set('l1_size', () => 1n << 31n),
  'refcount_table_offset points past the end of the file': set('refcount_table_offset', async (p) => BigInt((await fileSize(p)) + 16 * (await clusterSize(p)))),
  'refcount_table_offset overlaps the header': set('refcount_table_offset', () => 0n),
  'refcount_table_clusters is 2^31': set('refcount_table_clusters', () => 1n << 31n),
  'refcount_order is 7': set('refcount_order', () => 7n),
  'nb_snapshots is 2^20 with snapshots past the end of the file': {
    field: 'nb_snapshots',
    apply: async (p) => {
      await writeField(p, 'snapshots_offset', BigInt(64 * GiB));
      await writeField(p, 'nb_snapshots', 1n << 20n);
    },
  },
  'snapshot table entry claims 5000 bytes of extra data': {
    field: 'snapshots_offset',
    apply: async (p) => patchSnapshotEntry(p, 36, 5000),
  },
  'snapshots_offset is not cluster aligned': {
    field: 'snapshots_offset',
    apply: async (p) => {
      await takeSnapshot(p);
      await writeField(p, 'snapshots_offset', (await readField(p, 'snapshots_offset')) + 8n);
    },
  },
  'bitmap directory points outside the file': {
    field: 'bitmap directory',
    apply: async (p) => {
      await execa('qemu-img', ['bitmap', '--add', p, 'b0'], { timeout: 60_000, stdin: 'ignore' });
      const at = await extensionAt(p, 0x23852875);
      const v = Buffer.alloc(8);
      v.writeBigUInt64BE(BigInt(64 * GiB));
      await writeAt(p, at + 16, v);
    },
  },
  'incompatible_features has an unknown bit': set('incompatible_features', () => 1n << 40n),
  'header_length is 48': set('header_length', () => 48n),
  'backing_file_offset points past the end of the file': {
    field: 'backing_file_offset',
    apply: async (p) => {
      await writeField(p, 'backing_file_offset', BigInt((await fileSize(p)) + 4096));
      await writeField(p, 'backing_file_size', 16n);
    },
  },
  'backing_file_size is 4096': {
    field: 'backing_file_size',
    apply: async (p) => setBackingName(p, Buffer.alloc(4096, 0x61)),
  },
  'backing file names the image itself': {
    field: 'backing file name',
    apply: async (p) => setBackingName(p, Buffer.from(p.split('/').pop() ?? p)),
  },
};

/** Where the data of a header extension of this type starts (after its type and length). */
async function extensionAt(path: string, type: number): Promise<number> {
  let pos = Number(await readField(path, 'header_length'));
  for (;;) {
    const h = await readAt(path, pos, 8);
    const t = h.readUInt32BE(0);
    if (t === 0) throw new Error(`${path} has no header extension 0x${type.toString(16)}`);
    if (t === type) return pos + 8;
    pos += 8 + Math.ceil(h.readUInt32BE(4) / 8) * 8;
  }
}

/** A real snapshot "s1" taken by qemu-img, so that its table entry can then be damaged. */
async function takeSnapshot(path: string): Promise<void> {
  await execa('qemu-img', ['snapshot', '-c', 's1', path], { timeout: 60_000, stdin: 'ignore' });
}

/** Takes a snapshot, then sets the u32 at `at` in its table entry. */
async function patchSnapshotEntry(path: string, at: number, value: number): Promise<void> {
  await takeSnapshot(path);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  await writeAt(path, Number(await readField(path, 'snapshots_offset')) + at, b);
}

/** Sets the corrupt bit: a valid image qemu must refuse to open for writing. */
export async function markCorrupt(path: string): Promise<void> {
  const v = await readField(path, 'incompatible_features');
  await writeField(path, 'incompatible_features', v | INCOMPAT_CORRUPT);
}

export function defect(description: string): Defect {
  const d = DEFECTS[description];
  if (!d) {
    throw new Error(`unknown qcow2 defect "${description}"; known: ${Object.keys(DEFECTS).join('; ')}`);
  }
  return d;
}

/**
 * A valid base image made by real qemu-img, so every implementation under test is
 * handed identical bytes.
 */
export async function makeBaseImage(qemuImg: string, path: string, size: number): Promise<void> {
  await execa(qemuImg, ['create', '-q', '-f', 'qcow2', path, String(size)], { timeout: 60_000, stdin: 'ignore' });
}

export { HEADER };
