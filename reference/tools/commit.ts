/**
 * qemu-img commit [-d] [-b BASE] FILE: write what FILE holds into its backing
 * file (or, with -b, into BASE deeper in the chain, including every image in
 * between), then empty FILE so it falls through again - unless -d (drop
 * nothing) is given or a base is named, as qemu-img does.
 */
import * as path from 'node:path';
import { BlockError } from '../errors.js';
import { openImage, resolveBacking } from '../graph/open.js';
import { asImage, type BlockNode } from '../node.js';
import { Qcow2Image } from '../formats/qcow2/image.js';

export interface CommitRequest {
  filename: string;
  format?: string;
  /** -b: the image to commit into (default: the immediate backing file) */
  base?: string;
  /** -d: leave FILE as it is */
  keep?: boolean;
}

const CHUNK = 1024 * 1024;

export async function commitImage(req: CommitRequest): Promise<void> {
  const top = await openImage(req.filename, { format: req.format, readOnly: false, noBacking: true });
  try {
    if (!(top instanceof Qcow2Image) || !top.backingFile) {
      throw new BlockError('backing', `Image '${req.filename}' does not have a backing file`, { option: 'backing_file' });
    }
    // Walk the chain down to the base, remembering the layers above it.
    const layers: Array<{ name: string; format?: string }> = [];
    let name = resolveBacking(req.filename, top.backingFile);
    let format = top.backingFormat;
    const wanted = req.base ? path.resolve(req.base) : null;
    for (let depth = 0; ; depth++) {
      if (!wanted || path.resolve(name) === wanted) break;
      layers.push({ name, format });
      const n = asImage(await openImage(name, { format, readOnly: true, noBacking: true }));
      const next = n.backingFile ? { name: resolveBacking(name, n.backingFile), format: n.backingFormat } : null;
      await n.close();
      if (!next || depth > 1000) throw new BlockError('backing', `'${req.base}' is not in the backing chain of '${req.filename}'`, { option: 'base' });
      ({ name, format } = next);
    }
    const base = await openImage(name, { format, readOnly: false });
    try {
      // Everything above the base: the top image, then the layers between (read through the chain).
      // (a second view of images this commit holds open already: it shares every permission, as one QEMU graph would)
      const above = await openImage(req.filename, { format: req.format, readOnly: true, forceShare: true });
      try {
        await copyAbove(above, base, layers.length + 1);
      } finally {
        await above.close();
      }
    } finally {
      await base.close();
    }
    if (!req.keep && !req.base) await top.makeEmpty();
  } finally {
    await top.close();
  }
}

/** Copy every extent the chain holds in its top `levels` layers into `base`. */
async function copyAbove(chain: BlockNode, base: BlockNode, levels: number): Promise<void> {
  const size = Math.min(chain.size(), base.size());
  for (let off = 0; off < size;) {
    const st = await chain.blockStatus(off, Math.min(size - off, CHUNK));
    const end = Math.min(size, off + st.length);
    if (st.present && st.depth < levels) {
      if (st.zero && !st.data) await base.writeZeroes(off, end - off);
      else await base.write(off, await chain.read(off, end - off));
    }
    off = end;
  }
}
