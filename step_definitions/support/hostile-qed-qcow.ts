/**
 * Hostile qed and qcow images: a valid image made by qemu-img (with 128 KiB of
 * data written by qemu-io, so L2 tables and data clusters exist), then one
 * header or table field overwritten. Each defect lists the words an error
 * message may use to name it: the field's name in the format's specification,
 * or the words QEMU itself uses for it.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { execa } from 'execa';

export interface QedQcowDefect {
  field: string;
  /** words any one of which names the field in an error message */
  words: string[];
  apply(path: string): Promise<void>;
}

type Put = (offset: number, bytes: Buffer) => Promise<void>;

async function patch(path: string, fn: (put: Put) => Promise<void>): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fn(async (offset, bytes) => { await fh.write(bytes, 0, bytes.length, offset); });
  } finally {
    await fh.close();
  }
}

const le32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const le64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
const be32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
const be64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b; };

const d = (field: string, words: string[], fn: (put: Put, path: string) => Promise<void>): QedQcowDefect => ({
  field, words: [field, ...words], apply: (path) => patch(path, (put) => fn(put, path)),
});

// qed base: 64 KiB clusters, table_size 4: L1 at 64 KiB, data at 320 KiB, the L2 table at 448 KiB.
const QED: Record<string, QedQcowDefect> = {
  'magic is wrong': d('magic', ['not in QED format'], (put) => put(0, le32(0x12345678))),
  'cluster_size is 1000': d('cluster_size', ['cluster size'], (put) => put(4, le32(1000))),
  'cluster_size is 128 MiB': d('cluster_size', ['cluster size'], (put) => put(4, le32(1 << 27))),
  'table_size is 32': d('table_size', ['table size'], (put) => put(8, le32(32))),
  'image_size is 2^62 bytes': d('image_size', ['image size'], (put) => put(48, le64(1n << 62n))),
  'image_size is not a multiple of 512': d('image_size', ['image size'], (put) => put(48, le64(1000n))),
  'l1_table_offset points past the end of the file': d('l1_table_offset', ['table offset'], (put) => put(40, le64(1n << 40n))),
  'l1_table_offset is not cluster aligned': d('l1_table_offset', ['table offset'], (put) => put(40, le64(65536n + 512n))),
  'l1_table_offset overlaps the header': d('l1_table_offset', ['table offset'], (put) => put(40, le64(0n))),
  'header_size is 2^20 clusters': d('header_size', ['table offset'], (put) => put(12, le32(1 << 20))),
  'features has an unknown bit': d('features', ['QED features'], (put) => put(16, le64(1n << 20n))),
  'backing file names the image itself': d('backing file', ['backing_file', 'loops', 'lock'], async (put, path) => {
    const name = Buffer.from(basename(path));
    await put(16, le64(1n));
    await put(56, le32(64));
    await put(60, le32(name.length));
    await put(64, name);
  }),
  'L1 entry points past the end of the file': d('l1_table', ['L2 table', 'Invalid argument'], (put) => put(65536, le64(1n << 40n))),
  'L2 entry points past the end of the file': d('l2_table', ['data offset', 'Invalid argument'], (put) => put(448 * 1024, le64(1n << 40n))),
  // Valid offsets that collide: only a check can tell (both clusters are inside the file).
  'two L2 entries point at the same cluster': d('l2_table', [], (put) => put(448 * 1024 + 8, le64(320n * 1024n))),
  'an L2 entry points into the L1 table': d('l2_table', [], (put) => put(448 * 1024, le64(64n * 1024n))),
};

// qcow base: 4 KiB clusters, 512-entry L2 tables; the L1 table at 48, the first L2 table at 4096.
const QCOW: Record<string, QedQcowDefect> = {
  'magic is wrong': d('magic', ['not in qcow format', 'not a qcow image'], (put) => put(0, be32(0x12345678))),
  'version is 3': d('version', ['qcow version'], (put) => put(4, be32(3))),
  'size is 0': d('size', ['too small'], (put) => put(24, be64(0n))),
  'size is 2^64-1 bytes': d('size', ['too large'], (put) => put(24, be64((1n << 64n) - 1n))),
  'size needs a 4 GiB L1 table': d('size', ['too large'], (put) => put(24, be64(1n << 50n))),
  'cluster_bits is 20': d('cluster_bits', ['cluster size'], (put) => put(32, Buffer.from([20]))),
  'l2_bits is 20': d('l2_bits', ['L2 table size'], (put) => put(33, Buffer.from([20]))),
  'crypt_method is 7': d('crypt_method', ['encryption method'], (put) => put(36, be32(7))),
  'l1_table_offset points past the end of the file': d('l1_table_offset', ['L1 table'], (put) => put(40, be64(1n << 40n))),
  // The L1 table is at 48, the first L2 table at 4096, data from 8192.
  'L1 entry points past the end of the file': d('l1_table', ['L2 table'], (put) => put(48, be64(1n << 40n))),
  'L2 entry points past the end of the file': d('l2_table', ['data offset'], (put) => put(4096, be64(1n << 40n))),
  'backing_file_size is 5000': d('backing_file_size', ['backing file name too long'], async (put) => { await put(8, be64(48n)); await put(16, be32(5000)); }),
  'backing file names the image itself': d('backing file', ['backing_file', 'loops', 'lock'], async (put, path) => {
    const name = Buffer.from(basename(path));
    await put(8, be64(48n));
    await put(16, be32(name.length));
    await put(48, name);
  }),
};

export function qedQcowDefect(format: 'qed' | 'qcow', description: string): QedQcowDefect {
  const table = format === 'qed' ? QED : QCOW;
  const found = table[description];
  if (!found) throw new Error(`no ${format} defect "${description}"; known: ${Object.keys(table).join('; ')}`);
  return found;
}

/** The valid image every defect starts from, made by the real tools so it is the same for every IUT. */
export async function makeQedQcowBase(format: 'qed' | 'qcow', path: string): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', format, path, '64M'], { timeout: 60_000, stdin: 'ignore' });
  await execa('qemu-io', ['-f', format, '-c', 'write -P 0x11 0 128k', path], { timeout: 60_000, stdin: 'ignore' });
}
