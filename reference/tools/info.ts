/** qemu-img info --output=json, field for field as QEMU 7.2 prints it. */
import { asImage, type BlockNode } from '../node.js';
import { openImage, resolveBacking, shownName } from '../graph/open.js';
import { FileNode } from '../protocols/file.js';
import type { Qcow2Snapshot } from '../formats/qcow2/snapshot-table.js';
import { snapshotInfo } from './snapshot.js';
import { asSecretStore, type SecretsLike } from '../crypto/secret.js';

export type InfoJson = Record<string, unknown>;

export async function imageInfo(filename: string, opts: { format?: string; backingChain?: boolean; imageOpts?: boolean; forceShare?: boolean; secrets?: SecretsLike; keySecret?: string } = {}): Promise<InfoJson | InfoJson[]> {
  const node = await openImage(filename, { format: opts.format, readOnly: true, noBacking: !opts.backingChain, imageOpts: opts.imageOpts, forceShare: opts.forceShare, secrets: asSecretStore(opts.secrets), keySecret: opts.keySecret, noIO: true });
  try {
    // the name qemu-img shows: NBD's URI with its port, json:{...} for option-style input, ...
    const first = await describe(node, shownName(node) ?? filename);
    if (!opts.backingChain) return first;
    const chain: InfoJson[] = [first];
    let img = asImage(node);
    let curName = baseOf(node, filename);
    while (img.backing && img.backingFile) {
      curName = resolveBacking(curName, img.backingFile);
      chain.push(await describe(img.backing, curName));
      img = asImage(img.backing);
    }
    return chain;
  } finally {
    await node.close();
  }
}

/** What a relative backing name is relative to: the image's host file (the shown name may be json:{...}). */
function baseOf(node: BlockNode, shown: string): string {
  const file = (node as { file?: BlockNode }).file;
  return file instanceof FileNode ? file.filename : shown;
}

/** One image's entry, keys in qemu-img's order. */
async function describe(node: BlockNode, filename: string): Promise<InfoJson> {
  const img = asImage(node);
  // a protocol opened as the image itself (json:{"driver": "file", ...}) is its own file
  // a format of several files (vmdk's extents) counts them all itself
  const file = ('allocatedSize' in node ? (node as unknown as FileNode) : undefined) ?? (node as { file?: FileNode }).file;
  const info: InfoJson = {};
  if (img.backingFile && img.backingFormat) info['backing-filename-format'] = img.backingFormat;
  const snapshots = (node as { snapshots?: Qcow2Snapshot[] }).snapshots;
  if (snapshots?.length) info.snapshots = snapshots.map(snapshotInfo);
  info['virtual-size'] = node.size();
  info.filename = filename;
  if (img.clusterSize) info['cluster-size'] = img.clusterSize;
  info.format = node.driver;
  if (file) {
    // NBD has no allocation to ask for: qemu-img leaves actual-size out ("disk size: unavailable")
    const used = await file.allocatedSize();
    if (Number.isFinite(used)) info['actual-size'] = used;
  }
  const specific = img.formatSpecific?.();
  if (specific) info['format-specific'] = specific;
  if (img.backingFile) {
    info['full-backing-filename'] = resolveBacking(baseOf(node, filename), img.backingFile);
    info['backing-filename'] = img.backingFile;
  }
  if (img.encrypted) info.encrypted = true;
  // qemu-img shows dirty-flag only for formats that report block-driver info (raw, qcow2, vdi; not parallels)
  if (img.dirty !== undefined) info['dirty-flag'] = img.dirty;
  else if (node instanceof FileNode) info['dirty-flag'] = false;
  return info;
}
