/** qemu-img info --output=json, field for field as QEMU 7.2 prints it. */
import type { BlockNode } from '../node.js';
import { openImage, resolveBacking } from '../graph/open.js';
import { Qcow2Image } from '../formats/qcow2/image.js';
import { FileNode } from '../protocols/file.js';

export type InfoJson = Record<string, unknown>;

export async function imageInfo(filename: string, opts: { format?: string; backingChain?: boolean } = {}): Promise<InfoJson | InfoJson[]> {
  const node = await openImage(filename, { format: opts.format, readOnly: true, noBacking: !opts.backingChain });
  try {
    const first = await describe(node, filename);
    if (!opts.backingChain) return first;
    const chain: InfoJson[] = [first];
    let cur: BlockNode | null = node instanceof Qcow2Image ? node.backing : null;
    let curName = filename;
    let img = node;
    while (cur && img instanceof Qcow2Image) {
      curName = resolveBacking(curName, img.backingFile!);
      chain.push(await describe(cur, curName));
      img = cur;
      cur = cur instanceof Qcow2Image ? cur.backing : null;
    }
    return chain;
  } finally {
    await node.close();
  }
}

async function describe(node: BlockNode, filename: string): Promise<InfoJson> {
  const file = (node as { file?: FileNode }).file;
  const info: InfoJson = {};
  if (node instanceof Qcow2Image && node.backingFile && node.backingFormat) info['backing-filename-format'] = node.backingFormat;
  info['virtual-size'] = node.size();
  info.filename = filename;
  if (node instanceof Qcow2Image) info['cluster-size'] = node.clusterSize;
  info.format = node.driver;
  if (file) info['actual-size'] = await file.allocatedSize();
  if (node instanceof Qcow2Image) {
    const data: Record<string, unknown> = { compat: node.header.version >= 3 ? '1.1' : '0.10' };
    if (node.dataFileName) data['data-file'] = node.dataFileName;
    if (node.hasDataFile) data['data-file-raw'] = node.dataFileRaw;
    data['compression-type'] = node.header.compressionType === 1 ? 'zstd' : 'zlib';
    if (node.header.version >= 3) data['lazy-refcounts'] = node.lazyRefcounts;
    data['refcount-bits'] = 2 ** node.header.refcountOrder;
    if (node.header.version >= 3) {
      data.corrupt = node.corrupt;
      data['extended-l2'] = node.l2.extended;
    }
    info['format-specific'] = { type: 'qcow2', data };
    if (node.backingFile) {
      info['full-backing-filename'] = resolveBacking(filename, node.backingFile);
      info['backing-filename'] = node.backingFile;
    }
  }
  info['dirty-flag'] = node instanceof Qcow2Image ? node.dirty : false;
  return info;
}
