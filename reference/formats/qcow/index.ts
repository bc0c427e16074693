/**
 * The qcow driver table, and creation as QEMU 7.2 lays a new image out: the
 * 48-byte header, the backing file name right after it, then (from the next
 * 8-byte boundary) the L1 table written as whole zeroed sectors. Without a
 * backing file clusters are 4 KiB with 512-entry L2 tables; with one they are
 * 512 bytes with 4096-entry L2 tables. encryption=on / encrypt.format=aes sets crypt_method 1
 * (legacy AES-CBC, see image.ts); nothing else in the layout changes.
 */
import { BlockError } from '../../errors.js';
import type { QcowCreateOptions } from '../../types/create-qcow.js';
import type { CreateContext, FormatDriver } from '../driver.js';
import { lookupSecret } from '../../crypto/secret.js';
import { encodeHeader, HEADER_BYTES, l1SizeFor, QCOW_MAGIC } from './header.js';
import { QcowImage } from './image.js';

export async function createQcow(file: Parameters<FormatDriver['create']>[0], o: QcowCreateOptions & { size: number }, ctx: CreateContext = {}): Promise<void> {
  // Legacy AES (encryption=on or encrypt.format=aes): qemu-img 7.2 creates it; the passphrase is
  // looked up before anything is written. 7.2's words for the refusals.
  let cryptMethod = 0;
  if (o.encryption || o['encrypt.format'] !== undefined || o['encrypt.key-secret'] !== undefined) {
    if (!o.encryption && o['encrypt.format'] === undefined) throw new BlockError('invalid-option', "Parameter 'encrypt.format' is missing", { option: 'encrypt.format' });
    if (o['encrypt.format'] !== undefined && o['encrypt.format'] !== 'aes') throw new BlockError('invalid-option', 'encrypt.format: Unsupported encryption format', { option: 'encrypt.format', value: o['encrypt.format'] });
    const id = o['encrypt.key-secret'];
    if (!id) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
    lookupSecret(ctx.secrets ?? new Map(), id, 'encrypt.key-secret');
    cryptMethod = 1;
  }
  if (o.size === 0) throw new BlockError('invalid-size', 'size: Image size is too small, cannot be zero length', { option: 'size', value: 0 });
  // "fat:" names QEMU's virtual FAT directory: no name is stored, but the overlay geometry is kept.
  const backing = o.backing_file !== undefined && o.backing_file !== 'fat:' ? Buffer.from(o.backing_file, 'utf8') : null;
  const overlay = o.backing_file !== undefined;
  const clusterBits = overlay ? 9 : 12;
  const l2Bits = overlay ? 12 : 9;
  const headerEnd = Math.ceil((HEADER_BYTES + (backing?.length ?? 0)) / 8) * 8;
  const l1Size = Number(l1SizeFor(BigInt(o.size), clusterBits, l2Bits));
  const header = encodeHeader({
    backingFileOffset: backing ? HEADER_BYTES : 0, backingFileSize: backing?.length ?? 0, mtime: 0, size: o.size,
    clusterBits, l2Bits, cryptMethod, l1TableOffset: headerEnd, l1Size,
  });
  await file.truncate(0);
  await file.write(0, backing ? Buffer.concat([header, backing]) : header);
  const l1Bytes = Math.ceil((l1Size * 8) / 512) * 512;
  const chunk = Buffer.alloc(Math.min(l1Bytes, 4 << 20));
  for (let at = 0; at < l1Bytes; at += chunk.length) await file.write(headerEnd + at, chunk.subarray(0, Math.min(chunk.length, l1Bytes - at)));
}

export const qcowDriver: FormatDriver = {
  name: 'qcow',
  probe: (head) => (head.length >= 8 && head.readUInt32BE(0) === QCOW_MAGIC && head.readUInt32BE(4) === 1 ? 100 : 0),
  create: (file, options, ctx) => createQcow(file, options as unknown as QcowCreateOptions & { size: number }, ctx),
  async open(file, ctx) {
    return QcowImage.open(file, { secrets: ctx.secrets, keySecret: ctx.keySecret, noIO: ctx.noIO });
  },
  createOptionKeys: ['size', 'backing_file', 'backing_fmt', 'encryption', 'encrypt.format', 'encrypt.key-secret', 'preallocation', 'nocow', 'extent_size_hint'],
};

export { QcowImage };
