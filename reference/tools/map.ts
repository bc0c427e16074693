/** qemu-img map --output=json: extents of the guest disk and where they come from. */
import { openImage } from '../graph/open.js';
import type { BlockNode } from '../node.js';
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';

import type { MapEntryOutput as MapEntry } from '../types/output-map.js';

export type { MapEntry };

export async function mapImage(filename: string, opts: { format?: string; imageOpts?: boolean; forceShare?: boolean; secrets?: SecretsLike; keySecret?: string } = {}): Promise<MapEntry[]> {
  const node = await openImage(filename, { format: opts.format, readOnly: true, imageOpts: opts.imageOpts, forceShare: opts.forceShare, secrets: asSecretStore(opts.secrets), keySecret: opts.keySecret });
  try {
    return await mapNode(node);
  } finally {
    await node.close();
  }
}

export async function mapNode(node: BlockNode): Promise<MapEntry[]> {
  const out: MapEntry[] = [];
  const size = node.size();
  // An empty disk still gets one (empty) entry from qemu-img.
  if (size === 0) return [{ start: 0, length: 0, depth: 0, present: false, zero: false, data: false }];
  let pos = 0;
  while (pos < size) {
    const s = await node.blockStatus(pos, size - pos);
    if (s.length <= 0) break;
    const e: MapEntry = { start: pos, length: s.length, depth: s.depth, present: s.present, zero: s.zero, data: s.data };
    if (s.hostOffset !== undefined) e.offset = s.hostOffset;
    const prev = out[out.length - 1];
    // Adjacent extents that differ in nothing but position merge, as qemu-img's do.
    if (prev && prev.depth === e.depth && prev.present === e.present && prev.zero === e.zero && prev.data === e.data &&
      (prev.offset === undefined ? e.offset === undefined : e.offset === prev.offset + prev.length)) {
      prev.length += e.length;
    } else out.push(e);
    pos += s.length;
  }
  return out;
}
