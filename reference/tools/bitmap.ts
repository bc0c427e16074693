/**
 * qemu-img bitmap (--add [-g GRANULARITY] | --remove | --clear | --enable |
 * --disable)... FILE BITMAP: persistent dirty bitmaps of a qcow2 image, the
 * operations applied in the order given, as qemu-img 7.2 does. --merge SOURCE
 * takes the source bitmap from the same image, or from -b FILE [-F FMT]
 * (opened read-only, and read before the target changes).
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { parseSize } from '../options/qemuopts.js';
import { Qcow2Image } from '../formats/qcow2/image.js';
import { bitmapOperation, mergeBitmap } from '../formats/qcow2/bitmap-ops.js';
import type { BlockNode } from '../node.js';

export type BitmapAction = 'add' | 'remove' | 'clear' | 'enable' | 'disable' | 'merge';

export interface BitmapRequest {
  filename: string;
  format?: string;
  bitmap: string;
  actions: BitmapAction[];
  /** -g, as typed ("64k"); only with add */
  granularity?: string;
  /** --merge SOURCE: the source bitmap's name (with 'merge' in actions) */
  merge?: string;
  /** -b: the image holding the source bitmap (default: FILE itself); -F its format */
  sourceFile?: string;
  sourceFormat?: string;
}

export async function bitmapImage(req: BitmapRequest): Promise<void> {
  if (!req.actions.length) throw new BlockError('invalid-option', 'Need at least one of --add, --remove, --clear, --enable, --disable, or --merge');
  const merging = req.actions.includes('merge');
  if (merging && !req.merge) throw new BlockError('invalid-option', '--merge needs the name of a source bitmap', { option: 'merge' });
  if (!merging && (req.sourceFile !== undefined || req.sourceFormat !== undefined)) throw new BlockError('invalid-option', '-b and -F are only allowed with --merge', { option: req.sourceFile !== undefined ? 'b' : 'F' });
  if (req.sourceFormat !== undefined && req.sourceFile === undefined) throw new BlockError('invalid-option', '-F only allowed with -b', { option: 'F' });
  if (req.granularity !== undefined && !req.actions.includes('add')) throw new BlockError('invalid-option', 'granularity only supported with --add', { option: 'granularity' });
  const granularity = req.granularity === undefined ? undefined : parseSize(req.granularity, 'granularity');
  // the merge source first (read-only): a missing or damaged one refuses before the target is opened for writing
  let source: BlockNode | null = null;
  if (merging && req.sourceFile !== undefined) {
    source = await openImage(req.sourceFile, { format: req.sourceFormat, readOnly: true, noBacking: true });
    if (!(source instanceof Qcow2Image)) {
      const driver = source.driver;
      await source.close();
      throw new BlockError('unsupported', `Operation merge on bitmap ${req.bitmap} failed: Dirty bitmap '${req.merge}' not found (format '${driver}' has no persistent bitmaps)`, { option: 'b' });
    }
  }
  let node: BlockNode;
  try {
    node = await openImage(req.filename, { format: req.format, readOnly: false, noBacking: true });
  } catch (e) {
    await source?.close();
    throw e;
  }
  try {
    if (!(node instanceof Qcow2Image)) throw new BlockError('unsupported', `Operation ${req.actions[0]} on bitmap ${req.bitmap} failed: format '${node.driver}' has no persistent bitmaps`, { option: 'format' });
    // --add --disable creates the bitmap disabled, as qemu-img does
    for (let k = 0; k < req.actions.length; k++) {
      const a = req.actions[k];
      if (a === 'add') await bitmapOperation(node, req.bitmap, { op: 'add', granularity });
      else if (a === 'merge') await mergeBitmap(node, req.bitmap, (source ?? node) as Qcow2Image, req.merge!);
      else await bitmapOperation(node, req.bitmap, { op: a as 'remove' });
    }
  } finally {
    await node.close();
    await source?.close();
  }
}
