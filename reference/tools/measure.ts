/**
 * qemu-img measure: how big a new image would be, required (for the data
 * given) and fully allocated. Formulas as QEMU's qcow2_measure and raw_measure.
 */
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import { refcountMetadata } from '../formats/qcow2/refcount.js';
import { resolveCreateOptions } from '../options/create-options.js';
import type { BlockNode } from '../node.js';
import { Qcow2Image } from '../formats/qcow2/image.js';

import type { QemuImgMeasure as MeasureJson } from '../types/output-measure.js';

export async function measure(req: { outputFormat: string; options?: string; size?: number; source?: { filename: string; format?: string; imageOpts?: boolean; forceShare?: boolean } }): Promise<MeasureJson> {
  if ((req.size === undefined) === (req.source === undefined)) {
    throw new BlockError('invalid-option', 'Either --size N or one filename must be specified.', { option: 'size' });
  }
  const opts = resolveCreateOptions(req.outputFormat, req.options, { size: req.size ?? 0 }) as Record<string, unknown>;
  const src = req.source ? await openImage(req.source.filename, { format: req.source.format, imageOpts: req.source.imageOpts, forceShare: req.source.forceShare, readOnly: true }) : null;
  try {
    const ssize = src ? src.size() : Math.ceil((req.size as number) / 512) * 512;
    if (req.outputFormat === 'raw') return { required: ssize, 'fully-allocated': ssize };
    if (req.outputFormat !== 'qcow2') throw new BlockError('unsupported', `Format driver '${req.outputFormat}' does not support measure`);
    const cs = (opts.cluster_size as number | undefined) ?? 65536;
    const order = Math.log2((opts.refcount_bits as number | undefined) ?? 16);
    const extL2 = !!opts.extended_l2;
    const virtualSize = Math.ceil(ssize / cs) * cs;
    let required = 0;
    if (src) required = opts.backing_file ? virtualSize : await dataBytes(src, cs);
    const full = preallocSize(virtualSize, cs, order, extL2);
    // Preallocated data takes its room at once.
    const prealloc = opts.preallocation === 'falloc' || opts.preallocation === 'full';
    const out: MeasureJson = { required: prealloc ? full : full - virtualSize + required, 'fully-allocated': full };
    const v3 = opts.compat !== '0.10' && opts.compat !== 'v2';
    if (src && v3 && src instanceof Qcow2Image && src.header.version >= 3) return { bitmaps: 0, ...out };
    return out;
  } finally {
    await src?.close();
  }
}

/** Bytes of whole clusters that hold data (zero extents skipped), as qcow2_measure counts them. */
async function dataBytes(src: BlockNode, cs: number): Promise<number> {
  let required = 0;
  const size = src.size();
  for (let off = 0; off < size;) {
    const s = await src.blockStatus(off, size - off);
    let pnum = s.length;
    // Data anywhere in the chain counts, rounded out to whole clusters.
    if (!s.zero && s.data) {
      pnum = Math.ceil((off + pnum) / cs) * cs - off;
      required += (off % cs) + pnum;
    }
    off += pnum;
  }
  return required;
}

/** qcow2_calc_prealloc_size */
export function preallocSize(total: number, cs: number, order: number, extL2: boolean): number {
  const es = extL2 ? 16 : 8;
  const aligned = Math.ceil(total / cs) * cs;
  let meta = cs;
  let nl2e = aligned / cs;
  nl2e = Math.ceil(nl2e / (cs / es)) * (cs / es);
  meta += nl2e * es;
  let nl1e = (nl2e * es) / cs;
  nl1e = Math.ceil(nl1e / (cs / 8)) * (cs / 8);
  meta += nl1e * 8;
  meta += refcountMetadata((meta + aligned) / cs, cs, order, false).bytes;
  return meta + aligned;
}
