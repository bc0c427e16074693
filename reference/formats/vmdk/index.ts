/** The vmdk driver table: probe by the sparse magic or a descriptor's version line, create, open. */
import type { FormatDriver } from '../driver.js';
import type { VmdkCreateOptions } from '../../types/create-vmdk.js';
import { createVmdk } from './create.js';
import { VmdkImage } from './image.js';
import { COWD, KDMV } from './sparse.js';

export { VmdkImage } from './image.js';

/**
 * QEMU's vmdk_probe: a KDMV or COWD magic, or a text whose first line that is
 * neither a comment nor blank is "version=1", "version=2" or "version=3".
 */
export function probeVmdk(head: Buffer): number {
  if (head.length < 4) return 0;
  const magic = head.readUInt32BE(0);
  if (magic === KDMV || magic === COWD) return 100;
  let p = 0;
  const end = head.length;
  while (p < end) {
    if (head[p] === 0x23) { // '#': a comment line
      while (p < end && head[p] !== 0x0a) p++;
      p++;
      continue;
    }
    if (head[p] === 0x20) { // only blank lines before the version line
      while (p < end && head[p] === 0x20) p++;
      if (p < end && head[p] === 0x0d) p++;
      if (p === end || head[p] !== 0x0a) return 0;
      p++;
      continue;
    }
    const rest = head.toString('latin1', p, Math.min(end, p + 11));
    return /^version=[123](\n|\r\n)/.test(rest) ? 100 : 0;
  }
  return 0;
}

export const vmdkDriver: FormatDriver = {
  name: 'vmdk',
  probe: (head) => probeVmdk(head),
  create: (file, options, ctx) => createVmdk(file, options as VmdkCreateOptions, ctx?.filename ?? file.filename),
  open: (file, ctx) => VmdkImage.open(file, ctx),
  createOptionKeys: ['size', 'backing_file', 'backing_fmt', 'adapter_type', 'compat6', 'hwversion', 'subformat', 'toolsversion', 'zeroed_grain', 'preallocation', 'nocow', 'extent_size_hint'],
};
