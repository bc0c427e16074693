/**
 * qemu-img rebase [-u] -b BACKING [-F FMT] FILE. Safe mode (the default) keeps
 * the guest's view unchanged: wherever the image falls through to its backing
 * file and the old and new backing files differ, the old bytes are copied
 * into the image first. -u only rewrites the header. -b "" removes the
 * backing file, copying everything it provided (flattening).
 */
import { BlockError } from '../errors.js';
import { openImage, resolveBacking } from '../graph/open.js';
import type { BlockNode } from '../node.js';
import { Qcow2Image } from '../formats/qcow2/image.js';

export interface RebaseRequest {
  filename: string;
  format?: string;
  /** new backing file name as stored in the header ("" for none) */
  backingFile: string;
  backingFormat?: string;
  unsafe?: boolean;
}

const CHUNK = 1024 * 1024;

export async function rebaseImage(req: RebaseRequest): Promise<void> {
  if (req.backingFile && !req.backingFormat && !req.unsafe) {
    throw new BlockError('backing', `${req.filename}: the new backing file needs a backing format (-F)`, { option: 'backing_fmt' });
  }
  const node = await openImage(req.filename, { format: req.format, readOnly: false, noBacking: !!req.unsafe });
  try {
    if (!(node instanceof Qcow2Image)) throw new BlockError('unsupported', `Image format driver '${node.driver}' does not support rebase`);
    if (!req.unsafe) await copyWhereBackingsDiffer(node, req);
    await node.changeBackingFile(req.backingFile || undefined, req.backingFormat);
  } finally {
    await node.close();
  }
}

async function copyWhereBackingsDiffer(img: Qcow2Image, req: RebaseRequest): Promise<void> {
  let fresh: BlockNode | null = null;
  if (req.backingFile) {
    fresh = await openImage(resolveBacking(img.filename, req.backingFile), { format: req.backingFormat, readOnly: true }).catch((e: unknown) => {
      throw new BlockError('backing', `Could not open new backing file '${req.backingFile}': ${(e as Error).message}`, { option: 'backing_file', cause: e });
    });
  }
  try {
    const size = img.size();
    const cs = img.clusterSize;
    for (let off = 0; off < size;) {
      const st = await img.blockStatus(off, Math.min(size - off, CHUNK));
      const end = Math.min(size, off + st.length);
      if (st.depth > 0 || (!st.present && st.depth === 0)) {
        // The guest sees the old backing file here: keep what it sees.
        for (let pos = off; pos < end;) {
          const n = Math.min(end - pos, CHUNK - (pos % cs));
          const before = await img.read(pos, n);
          const after = await readOrZero(fresh, pos, n);
          if (!before.equals(after)) await img.write(pos, before);
          pos += n;
        }
      }
      off = end;
    }
  } finally {
    await fresh?.close();
  }
}

async function readOrZero(node: BlockNode | null, off: number, n: number): Promise<Buffer> {
  if (!node || off >= node.size()) return Buffer.alloc(n);
  const m = Math.min(n, node.size() - off);
  const b = await node.read(off, m);
  return m === n ? b : Buffer.concat([b, Buffer.alloc(n - m)]);
}
