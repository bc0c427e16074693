/** qemu-img resize [--shrink] [--preallocation=MODE] FILE [+|-]SIZE */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { asImage } from '../node.js';
import { parseSize } from '../options/qemuopts.js';
import { Qcow2Image } from '../formats/qcow2/image.js';
import { resizeBitmaps } from '../formats/qcow2/bitmap-ops.js';

export interface ResizeRequest {
  filename: string;
  format?: string;
  /** absolute ("1G") or relative ("+64M", "-1M"), as qemu-img takes it */
  size: string;
  shrink?: boolean;
  /** off | metadata | falloc | full (anything else is refused) */
  preallocation?: string;
}

const PREALLOCATION = ['off', 'metadata', 'falloc', 'full'];

export async function resizeImage(req: ResizeRequest): Promise<number> {
  if (req.preallocation !== undefined && !PREALLOCATION.includes(req.preallocation)) {
    throw new BlockError('invalid-option', `Invalid preallocation mode: '${req.preallocation}' (allowed: ${PREALLOCATION.join(', ')})`, { option: 'preallocation' });
  }
  const node = await openImage(req.filename, { format: req.format, readOnly: false, noBacking: true, resize: true });
  try {
    const img = asImage(node);
    if (!img.resize) throw new BlockError('unsupported', `Image format driver '${node.driver}' does not support resize`);
    const rel = req.size.startsWith('+') ? 1 : req.size.startsWith('-') ? -1 : 0;
    const amount = parseSize(rel ? req.size.slice(1) : req.size, 'size');
    let size = rel ? node.size() + rel * amount : amount;
    if (size < 0) throw new BlockError('invalid-size', `New image size must be positive (got ${size})`, { option: 'size' });
    size = Math.ceil(size / 512) * 512; // QEMU counts disks in sectors
    await img.resize(size, { shrink: req.shrink, preallocation: req.preallocation as 'off' | undefined });
    // persistent bitmaps follow the disk's new size, as in QEMU
    if (node instanceof Qcow2Image) await resizeBitmaps(node, size);
    return size;
  } finally {
    await node.close();
  }
}
