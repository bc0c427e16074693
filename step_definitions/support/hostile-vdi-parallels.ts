/**
 * Hostile vdi and parallels images: a valid image made by qemu-img and
 * written by qemu-io (so block map / BAT entries and data exist), then one
 * header field or table entry overwritten here, in code. Each defect lists
 * the words an error message may use to name what is wrong: the field's name
 * in the format's layout, or the words QEMU itself uses for it.
 *
 * Base images (both 8 MiB; 128 KiB of 0x11 at 0 and 64 KiB of 0x22 at 2 MiB):
 *   vdi        header at 0, block map at 512 (8 entries: [0] = 0, [2] = 1),
 *              data at 1024; 2 blocks allocated, the file is 2 MiB + 1 KiB.
 *   parallels  cluster_size=64k, "WithouFreSpacExt" header, BAT at 64
 *              (128 entries: [0] = 1, [1] = 2, [32] = 3, in clusters),
 *              data_off 128 sectors; the file is 256 KiB.
 */
import { open } from 'node:fs/promises';
import { execa } from 'execa';

export type VdiParallels = 'vdi' | 'parallels';

export interface VdiParallelsDefect {
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

const le32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const le64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };

const d = (field: string, words: string[], fn: (put: Put) => Promise<void>): VdiParallelsDefect => ({
  field, words: [field, ...words], apply: (path) => patch(path, fn),
});

const MiB = 2 ** 20;
const VDI_BMAP = 512;
const PRL_BAT = 64;

const VDI: Record<string, VdiParallelsDefect> = {
  'signature is wrong': d('signature', ['VDI format'], (put) => put(0x40, le32(0x12345678))),
  'version is 2.0': d('version', [], (put) => put(0x44, le32(0x00020000))),
  'image_type is 3': d('image_type', ['image type'], (put) => put(0x4c, le32(3))),
  'offset_bmap points past the end of the file': d('offset_bmap', ['block map'], (put) => put(0x154, le32(2 ** 30))),
  'offset_bmap is not sector aligned': d('offset_bmap', ['block map offset'], (put) => put(0x154, le32(600))),
  'offset_data is not sector aligned': d('offset_data', ['data offset'], (put) => put(0x158, le32(1000))),
  'sector_size is 4096': d('sector_size', ['sector size'], (put) => put(0x168, le32(4096))),
  'disk_size is 2^50 bytes': d('disk_size', ['disk size', 'image size'], (put) => put(0x170, le64(1n << 50n))),
  'disk_size is larger than the block map covers': d('disk_size', ['disk size'], (put) => put(0x170, le64(BigInt(16 * MiB)))),
  'block_size is 64 KiB': d('block_size', ['block size'], (put) => put(0x178, le32(65536))),
  'blocks_in_image is 2^30': d('blocks_in_image', ['too many blocks'], async (put) => {
    await put(0x170, le64(1n << 50n >> 2n)); // a disk that needs them, within the size limit
    await put(0x180, le32(2 ** 30));
  }),
  'blocks_in_image needs a block map past the end of the file': d('blocks_in_image', ['block map', 'offset_bmap'], (put) => put(0x180, le32(2 ** 24))),
  'parent UUID is set': d('uuid_parent', ['parent UUID'], (put) => put(0x1b8, Buffer.alloc(16, 0x5a))),
  'a block map entry points past blocks_in_image': d('block map', ['block index'], (put) => put(VDI_BMAP + 4, le32(100))),
  'a block map entry points past the end of the file': d('block map', ['block index'], (put) => put(VDI_BMAP + 4, le32(5))),
  'two block map entries point at the same block': d('block map', ['also used'], (put) => put(VDI_BMAP + 4 * 2, le32(0))),
  // Damage only a check can see: the entries are fine, the count is not.
  'blocks_allocated is 3': d('blocks_allocated', ['allocated blocks'], (put) => put(0x184, le32(3))),
};

const PARALLELS: Record<string, VdiParallelsDefect> = {
  'magic is wrong': d('magic', ['Parallels format'], (put) => put(0, Buffer.from('WithoutFreeSpacX', 'latin1'))),
  'version is 3': d('version', ['Parallels format'], (put) => put(0x10, le32(3))),
  'tracks is 0': d('tracks', ['sectors per track'], (put) => put(0x1c, le32(0))),
  'tracks is 2^30': d('tracks', ['too big cluster'], (put) => put(0x1c, le32(2 ** 30))),
  'bat_entries is 2^30': d('bat_entries', ['catalog too large'], (put) => put(0x20, le32(2 ** 30))),
  'bat_entries runs past the end of the file': d('bat_entries', ['BAT'], (put) => put(0x20, le32(1_000_000))),
  'nb_sectors is more than the BAT maps': d('nb_sectors', ['bat_entries'], (put) => put(0x24, le64(1n << 40n))),
  'a BAT entry points past the end of the file': d('BAT', ['outside'], (put) => put(PRL_BAT + 4, le32(1000))),
  // The old magic counts BAT entries in sectors: sector 1 is the BAT itself.
  'a BAT entry of an old-format image points into the BAT': d('BAT', ['header'], async (put) => {
    await put(0, Buffer.from('WithoutFreeSpace', 'latin1'));
    await put(PRL_BAT, Buffer.concat([le32(128), le32(1)]));
    await put(PRL_BAT + 4 * 32, le32(384));
  }),
  'two BAT entries point at the same cluster': d('BAT', ['same cluster'], (put) => put(PRL_BAT + 4 * 32, le32(1))),
  // What a writer that never closed leaves: qemu-img check reports it, a read-write open refuses it.
  'inuse flag is set': d('inuse', ['not closed correctly'], (put) => put(0x2c, le32(0x746f6e59))),
};

export function vdiParallelsDefect(format: VdiParallels, description: string): VdiParallelsDefect {
  const table = format === 'vdi' ? VDI : PARALLELS;
  const found = table[description];
  if (!found) throw new Error(`no ${format} defect "${description}"; known: ${Object.keys(table).join('; ')}`);
  return found;
}

/** The valid image every defect starts from, made by the real tools so it is the same for every IUT. */
export async function makeVdiParallelsBase(format: VdiParallels, path: string): Promise<void> {
  const opts = format === 'parallels' ? ['-o', 'cluster_size=64k'] : [];
  await execa('qemu-img', ['create', '-q', '-f', format, ...opts, path, '8M'], { timeout: 60_000, stdin: 'ignore' });
  await execa('qemu-io', ['-f', format, '-c', 'write -P 0x11 0 128k', '-c', 'write -P 0x22 2M 64k', path], { timeout: 60_000, stdin: 'ignore' });
}
