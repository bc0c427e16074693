/** The qcow2 driver table. */
import type { FormatDriver } from '../driver.js';
import { checkQcow2 } from './check.js';
import { createQcow2, type Qcow2CreateParams } from './create.js';
import { Qcow2Image } from './image.js';
import { QCOW2_MAGIC } from './layout.js';

export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  probe: (head) => (head.length >= 8 && head.readUInt32BE(0) === QCOW2_MAGIC && head.readUInt32BE(4) >= 2 ? 100 : 0),
  create: (file, options, ctx) => createQcow2(file, options as unknown as Qcow2CreateParams, ctx),
  async open(file, ctx) {
    const img = await Qcow2Image.open(file, { readOnly: ctx.readOnly, forCheck: ctx.forCheck, locking: ctx.locking, forceShare: ctx.forceShare, key: { secrets: ctx.secrets, keySecret: ctx.keySecret, noIO: ctx.noIO } });
    img.writethrough = !!ctx.writethrough;
    img.check = (opts) => checkQcow2(img, opts);
    // A dirty image (lazy_refcounts, not closed cleanly) gets its refcounts
    // rebuilt before the first write, exactly as QEMU does on a read-write open.
    if (img.dirty && !ctx.readOnly && !ctx.forCheck) await checkQcow2(img, { repair: 'all' });
    return img;
  },
  createOptionKeys: [
    'size', 'compat', 'cluster_size', 'preallocation', 'lazy_refcounts', 'refcount_bits', 'backing_file',
    'backing_fmt', 'extended_l2', 'compression_type', 'data_file', 'data_file_raw', 'nocow', 'extent_size_hint',
  ],
};

export { Qcow2Image };
