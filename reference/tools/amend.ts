/**
 * qemu-img amend -o OPTIONS FILE for qcow2: compat (0.10 <-> 1.1),
 * lazy_refcounts, refcount_bits, size, backing_file / backing_fmt. Options
 * that only make sense at creation are refused with qemu-img's words, and
 * every option is checked before anything is changed.
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { parseBool, parseQemuOpts, parseSize } from '../options/qemuopts.js';
import { Qcow2Image } from '../formats/qcow2/image.js';

const AMENDABLE = new Set(['compat', 'lazy_refcounts', 'refcount_bits', 'size', 'backing_file', 'backing_fmt']);
const CREATE_ONLY = new Set(['cluster_size', 'preallocation', 'extended_l2', 'compression_type', 'nocow', 'extent_size_hint', 'encryption', 'encrypt.format']);

export interface AmendRequest { filename: string; format?: string; options: string }

export async function amendImage(req: AmendRequest): Promise<void> {
  const given = parseQemuOpts(req.options).values;
  for (const k of given.keys()) {
    if (CREATE_ONLY.has(k)) throw new BlockError('invalid-option', `Invalid parameter '${k}'\nThis option is only supported for image creation`, { option: k });
    if (!AMENDABLE.has(k)) throw new BlockError('invalid-option', `Invalid parameter '${k}' for amend (the reference amends: ${[...AMENDABLE].join(', ')})`, { option: k });
  }
  const node = await openImage(req.filename, { format: req.format, readOnly: false, noBacking: true });
  try {
    if (!(node instanceof Qcow2Image)) throw new BlockError('unsupported', `Format driver '${node.driver}' does not support option amendment`);
    const compat = given.get('compat');
    if (compat !== undefined && !['0.10', '1.1', 'v2', 'v3'].includes(compat)) {
      throw new BlockError('invalid-option', `compat: '${compat}' is invalid; allowed: 0.10, 1.1`, { option: 'compat' });
    }
    const version = compat === undefined ? node.header.version : compat === '0.10' || compat === 'v2' ? 2 : 3;
    const lazy = given.has('lazy_refcounts') ? parseBool(given.get('lazy_refcounts')!, 'lazy_refcounts') : undefined;
    let order: number | undefined;
    if (given.has('refcount_bits')) {
      const bits = Number(given.get('refcount_bits'));
      if (!Number.isInteger(bits) || bits < 1 || bits > 64 || (bits & (bits - 1)) !== 0) {
        throw new BlockError('invalid-option', `refcount_bits: '${given.get('refcount_bits')}' is invalid; allowed: a power of two between 1 and 64`, { option: 'refcount_bits' });
      }
      order = Math.log2(bits);
    }
    const finalOrder = order ?? node.header.refcountOrder;
    if (version === 2 && (lazy ?? (node.lazyRefcounts && compat === undefined))) {
      throw new BlockError('option-conflict', 'Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)', { option: 'lazy_refcounts' });
    }
    if (version === 2 && finalOrder !== 4) {
      throw new BlockError('option-conflict', 'Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)', { option: 'refcount_bits' });
    }
    const size = given.has('size') ? parseSize(given.get('size')!, 'size') : undefined;
    if (given.has('backing_file') && given.get('backing_file') && !given.get('backing_fmt') && !node.backingFormat) {
      throw new BlockError('backing', 'backing_file: a backing file needs a backing format (backing_fmt)', { option: 'backing_fmt' });
    }

    // Upgrade first, downgrade last, as qemu-img does.
    if (version > node.header.version) await node.setVersion(3);
    if (order !== undefined) await node.setRefcountOrder(order);
    if (given.has('backing_file') || given.has('backing_fmt')) {
      const file = given.has('backing_file') ? given.get('backing_file') || undefined : node.backingFile;
      await node.changeBackingFile(file, given.get('backing_fmt') ?? node.backingFormat);
    }
    if (lazy !== undefined && version === 3) await node.setLazyRefcounts(lazy);
    if (size !== undefined) await node.resize(Math.ceil(size / 512) * 512, { shrink: true });
    if (version < node.header.version) {
      if (node.lazyRefcounts) await node.setLazyRefcounts(false);
      await node.setVersion(2);
    }
  } finally {
    await node.close();
  }
}
