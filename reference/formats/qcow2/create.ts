/**
 * qcow2 image creation, in the order QEMU's qcow2_co_create works, so the
 * result is byte-identical to qemu-img's: header cluster, one-cluster refcount
 * table, one refcount block, then (as the image is "opened") the first three
 * clusters counted, the full header with extensions, the L1 table sized for
 * the disk, preallocation, and finally the backing file name.
 */
import * as path from 'node:path';
import type { ProtocolNode } from '../../node.js';
import { FileNode } from '../../protocols/file.js';
import {
  AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, INCOMPAT_COMPRESSION, INCOMPAT_DATA_FILE, INCOMPAT_EXTL2,
  QCOW2_MAGIC, V2_HEADER_LENGTH, V3_HEADER_LENGTH, buildHeaderTail, serializeHeader, type Qcow2Header,
} from './layout.js';
import { Qcow2Image } from './image.js';
import { Refcounts } from './refcount.js';
import { BlockError } from '../../errors.js';
import type { Qcow2CreateOptions } from '../../types/create-qcow2.js';
import type { CreateContext } from '../driver.js';
import { buildQcow2Luks, createKey } from './crypto.js';
import { EXT_CRYPTO_HEADER, parseHeader } from './layout.js';

/** Options as resolved and validated against schemas/create/qcow2.json (with the size settled). */
export type Qcow2CreateParams = Qcow2CreateOptions & { size: number };

export async function createQcow2(file: ProtocolNode, p: Qcow2CreateParams, ctx: CreateContext = {}): Promise<void> {
  // Encryption (encrypt.format=luks|aes, encryption=on meaning aes): the key is looked up
  // (and the LUKS header built) before anything is written, so a bad secret leaves nothing.
  const encFormat = p['encrypt.format'] ?? (p.encryption ? 'aes' : undefined);
  let luks: ReturnType<typeof buildQcow2Luks> | undefined;
  if (encFormat) {
    const pass = createKey(p, ctx.secrets);
    if (encFormat === 'luks') luks = buildQcow2Luks(p, pass);
  }
  const version = p.compat === '0.10' ? 2 : 3;
  const cs = p.cluster_size ?? 65536;
  const clusterBits = Math.log2(cs);
  const refcountOrder = Math.log2(p.refcount_bits ?? 16);
  // An external data file: created beside the image (relative names are taken
  // relative to the image's directory, where the image will look for it).
  // data_file_raw keeps it a valid raw image, so every cluster is mapped at once.
  let prealloc = p.preallocation ?? 'off';
  if (p.data_file_raw && prealloc === 'off') prealloc = 'metadata';
  if (p.data_file) {
    const target = path.isAbsolute(p.data_file) ? p.data_file : path.join(path.dirname(file.filename), p.data_file);
    const data = FileNode.open(target, { create: true });
    try {
      await data.truncate(0);
      await data.truncate(p.size, prealloc === 'falloc' || prealloc === 'full' ? prealloc : 'off');
    } finally {
      await data.close();
    }
  }
  const h: Qcow2Header = {
    magic: QCOW2_MAGIC, version, backingFileOffset: 0, backingFileSize: 0, clusterBits, size: 0, cryptMethod: 0,
    l1Size: 0, l1TableOffset: 0, refcountTableOffset: cs, refcountTableClusters: 1, nbSnapshots: 0, snapshotsOffset: 0,
    incompatibleFeatures: (p.extended_l2 ? INCOMPAT_EXTL2 : 0) | (p.compression_type === 'zstd' ? INCOMPAT_COMPRESSION : 0) | (p.data_file ? INCOMPAT_DATA_FILE : 0),
    compatibleFeatures: p.lazy_refcounts ? COMPAT_LAZY_REFCOUNTS : 0,
    autoclearFeatures: p.data_file_raw ? AUTOCLEAR_DATA_FILE_RAW : 0,
    refcountOrder, headerLength: version >= 3 ? V3_HEADER_LENGTH : V2_HEADER_LENGTH,
    compressionType: p.compression_type === 'zstd' ? 1 : 0,
  };
  // The header cluster, the refcount table (pointing at the block in cluster 2) and the block.
  const head = Buffer.alloc(3 * cs);
  serializeHeader(h, head);
  head.writeBigUInt64BE(BigInt(2 * cs), cs);
  await file.write(0, head);

  const rc = new Refcounts(file, { clusterBits, refcountOrder }, cs, tableFrom(head.subarray(cs, 2 * cs)));
  await rc.alloc(3);
  let cryptoExt: Buffer | undefined;
  let backingName: string | undefined;
  const writeHeader = async (backing?: string) => {
    if (backing) backingName = backing;
    const cluster0 = Buffer.alloc(cs);
    const { tail, backingFileOffset, backingFileSize } = buildHeaderTail({
      version, clusterSize: cs, headerLength: h.headerLength, backingFile: backingName,
      backingFormat: backingName ? p.backing_fmt : undefined, dataFile: p.data_file, crypto: cryptoExt,
    });
    h.backingFileOffset = backingFileOffset;
    h.backingFileSize = backingFileSize;
    serializeHeader(h, cluster0);
    tail.copy(cluster0, h.headerLength);
    await file.write(0, cluster0);
  };
  rc.onTableMoved = async (offset, clusters) => {
    h.refcountTableOffset = offset;
    h.refcountTableClusters = clusters;
    await writeHeader();
  };
  await writeHeader();

  // Give it its size: an L1 table of exactly the entries the disk needs.
  const l2Entries = cs / (p.extended_l2 ? 16 : 8);
  const l1Size = Math.ceil(p.size / (cs * l2Entries));
  h.size = p.size;
  if (l1Size > 0) {
    const l1Bytes = l1Size * 8;
    h.l1TableOffset = await rc.alloc(Math.ceil(l1Bytes / cs));
    h.l1Size = l1Size;
    await file.write(h.l1TableOffset, Buffer.alloc(l1Bytes));
  }
  await writeHeader();
  await rc.flush();

  if (prealloc !== 'off' && p.size > 0) {
    const img = await Qcow2Image.open(file, { readOnly: false });
    img.refcounts.freeClusterIndex = rc.freeClusterIndex;
    // With a data file, QEMU only maps the clusters (the data file was sized above).
    if (prealloc === 'metadata' || p.data_file) await preallocateMetadata(img, p.data_file ? null : file);
    else await preallocateData(img, file, prealloc);
    await img.writeBack();
    // the image's own file belongs to the caller; the data file this open made is ours to close
    if (img.data !== file) await img.data.close();
  }
  if (p.backing_file) await writeHeader(p.backing_file);

  // qcow2_set_up_encryption comes last: crypt_method, and for LUKS its header in new clusters.
  if (encFormat) {
    let rcE = rc;
    if (prealloc !== 'off' && p.size > 0) {
      // preallocation went through the opened image: take its refcounts and tables from the file
      const now = parseHeader(await file.read(0, Math.min(cs, file.size())));
      Object.assign(h, { refcountTableOffset: now.refcountTableOffset, refcountTableClusters: now.refcountTableClusters, l1TableOffset: now.l1TableOffset, l1Size: now.l1Size });
      rcE = await Refcounts.load(file, { clusterBits, refcountOrder }, h.refcountTableOffset, h.refcountTableClusters);
      rcE.onTableMoved = rc.onTableMoved;
    }
    h.cryptMethod = encFormat === 'luks' ? 2 : 1;
    if (luks) {
      const len = luks.container.length;
      const n = Math.ceil(len / cs);
      const off = await rcE.alloc(n);
      const area = Buffer.alloc(n * cs);
      luks.container.copy(area, 0);
      await file.write(off, area);
      cryptoExt = Buffer.alloc(16);
      cryptoExt.writeBigUInt64BE(BigInt(off), 0);
      cryptoExt.writeBigUInt64BE(BigInt(len), 8);
    }
    await writeHeader();
    await rcE.flush();
  }
}

function tableFrom(buf: Buffer): number[] {
  const t: number[] = [];
  for (let i = 0; i < buf.length / 8; i++) t.push(Number(buf.readBigUInt64BE(i * 8)));
  return t;
}

/** preallocation=metadata: every L2 table and data cluster allocated, no data written (preallocate_co). */
async function preallocateMetadata(img: Qcow2Image, file: ProtocolNode | null): Promise<void> {
  const cs = img.clusterSize;
  const size = img.size();
  let g = 0;
  let lastEnd = 0;
  while (g < size) {
    const cl = g / cs;
    const perL2 = img.l2.entries;
    const n = Math.min(Math.ceil(size / cs) - cl, perL2 - (cl % perL2));
    // subclusters stay unallocated, except over a raw data file, which is the disk
    const { host } = await img.linkClusters(cl, n, null, img.hasDataFile);
    lastEnd = host + n * cs;
    g += n * cs;
  }
  // The file must reach the last allocated byte, or reads past EOF would fail.
  if (file && lastEnd > file.size()) await file.truncate(lastEnd);
}

/** preallocation=falloc|full: new refcount structures covering the data area, then data and L2 entries. */
async function preallocateData(img: Qcow2Image, file: ProtocolNode, mode: 'falloc' | 'full'): Promise<void> {
  const cs = img.clusterSize;
  const rc = img.refcounts;
  const size = img.size();
  const last = await lastUsedCluster(rc, file.size(), cs);
  const oldFileSize = last >= 0 ? (last + 1) * cs : Math.ceil(file.size() / cs) * cs;
  const dataClusters = Math.ceil(size / cs);
  const l2Tables = Math.ceil(dataClusters / img.l2.entries) + 1;
  const start = await rc.refcountArea(oldFileSize, dataClusters + l2Tables, true, 0, 0);
  await rc.increment(start, dataClusters);
  await file.truncate(start + dataClusters * cs, mode);
  let cl = 0;
  let host = start;
  while (cl < dataClusters) {
    const n = Math.min(dataClusters - cl, img.l2.entries - (cl % img.l2.entries));
    await img.linkClusters(cl, n, host, true);
    cl += n;
    host += n * cs;
  }
}

/** qcow2_get_last_cluster: the highest cluster below the file end with a non-zero refcount. */
async function lastUsedCluster(rc: Refcounts, fileSize: number, cs: number): Promise<number> {
  for (let i = Math.ceil(fileSize / cs) - 1; i >= 0; i--) {
    if ((await rc.get(i)) > 0) return i;
  }
  return -1;
}
