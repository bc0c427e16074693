/**
 * qemu-img bitmap (--add [-g GRANULARITY] | --remove | --clear | --enable |
 * --disable)... FILE BITMAP: persistent dirty bitmaps of a qcow2 image, the
 * operations applied in the order given, as qemu-img 7.2 does. --merge is not
 * implemented by the reference (refused, naming it).
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { parseSize } from '../options/qemuopts.js';
import { Qcow2Image } from '../formats/qcow2/image.js';
import { bitmapOperation } from '../formats/qcow2/bitmap-ops.js';

export type BitmapAction = 'add' | 'remove' | 'clear' | 'enable' | 'disable' | 'merge';

export interface BitmapRequest {
  filename: string;
  format?: string;
  bitmap: string;
  actions: BitmapAction[];
  /** -g, as typed ("64k"); only with add */
  granularity?: string;
}

export async function bitmapImage(req: BitmapRequest): Promise<void> {
  if (!req.actions.length) throw new BlockError('invalid-option', 'Need at least one of --add, --remove, --clear, --enable, --disable, or --merge');
  if (req.actions.includes('merge')) throw new BlockError('unsupported', 'bitmap --merge is not implemented by the reference', { option: 'merge' });
  if (req.granularity !== undefined && !req.actions.includes('add')) throw new BlockError('invalid-option', 'granularity only supported with --add', { option: 'granularity' });
  const granularity = req.granularity === undefined ? undefined : parseSize(req.granularity, 'granularity');
  const node = await openImage(req.filename, { format: req.format, readOnly: false, noBacking: true });
  try {
    if (!(node instanceof Qcow2Image)) throw new BlockError('unsupported', `Operation ${req.actions[0]} on bitmap ${req.bitmap} failed: format '${node.driver}' has no persistent bitmaps`, { option: 'format' });
    // --add --disable creates the bitmap disabled, as qemu-img does
    for (let k = 0; k < req.actions.length; k++) {
      const a = req.actions[k];
      if (a === 'add') await bitmapOperation(node, req.bitmap, { op: 'add', granularity });
      else await bitmapOperation(node, req.bitmap, { op: a as 'remove' });
    }
  } finally {
    await node.close();
  }
}
