/**
 * The qed driver table, and creation as QEMU 7.2 lays a new image out: one
 * header cluster (header, then the backing file name), then the zeroed L1
 * table of table_size clusters. Nothing else: L2 tables and data come with
 * the first writes.
 */
import { BlockError } from '../../errors.js';
import type { QedCreateOptions } from '../../types/create-qed.js';
import type { FormatDriver } from '../driver.js';
import { checkQed } from './check.js';
import { encodeHeader, F_BACKING_FILE, F_BACKING_NO_PROBE, HEADER_BYTES, maxImageSize, QED_MAGIC } from './header.js';
import { QedImage } from './image.js';

export async function createQed(file: Parameters<FormatDriver['create']>[0], o: QedCreateOptions & { size: number }): Promise<void> {
  const cs = o.cluster_size ?? 65536;
  const ts = o.table_size ?? 4;
  const max = maxImageSize(cs, ts);
  if (BigInt(o.size) > max || o.size % 512 !== 0) {
    throw new BlockError('invalid-size', `size: QED image size must be a multiple of 512 and at most ${max} bytes with cluster_size ${cs} and table_size ${ts} (got ${o.size})`, { option: 'size', value: o.size });
  }
  const name = o.backing_file !== undefined ? Buffer.from(o.backing_file, 'utf8') : Buffer.alloc(0);
  if (HEADER_BYTES + name.length > cs) {
    throw new BlockError('invalid-option', `backing_file: a name of ${name.length} bytes does not fit the ${cs}-byte header cluster`, { option: 'backing_file' });
  }
  let features = 0n;
  if (o.backing_file !== undefined) {
    features |= F_BACKING_FILE;
    if (o.backing_fmt === 'raw') features |= F_BACKING_NO_PROBE;
  }
  const header = encodeHeader({
    clusterSize: cs, tableSize: ts, headerSize: 1, features, compatFeatures: 0n, autoclearFeatures: 0n,
    l1TableOffset: cs, imageSize: o.size,
    backingNameOffset: o.backing_file !== undefined ? HEADER_BYTES : 0, backingNameSize: name.length,
  });
  await file.truncate(0);
  await file.write(0, Buffer.concat([header, name]));
  // The L1 table is written as real zeroes (as QEMU does), in bounded pieces.
  const chunk = Buffer.alloc(Math.min(cs * ts, 4 << 20));
  for (let at = 0; at < cs * ts; at += chunk.length) await file.write(cs + at, chunk.subarray(0, Math.min(chunk.length, cs * ts - at)));
}

export const qedDriver: FormatDriver = {
  name: 'qed',
  probe: (head) => (head.length >= HEADER_BYTES && head.readUInt32LE(0) === QED_MAGIC ? 100 : 0),
  create: (file, options) => createQed(file, options as unknown as QedCreateOptions & { size: number }),
  async open(file, ctx) {
    const img = await QedImage.open(file, ctx.readOnly);
    img.check = (opts) => checkQed(img, opts);
    // Not closed cleanly: QEMU checks and repairs before the first write.
    if (img.needsCheck && !ctx.readOnly && !ctx.forCheck) await checkQed(img, { repair: 'all' });
    return img;
  },
  createOptionKeys: ['size', 'backing_file', 'backing_fmt', 'cluster_size', 'table_size', 'preallocation', 'nocow', 'extent_size_hint'],
};

export { QedImage };
