/**
 * qemu-img convert: copy the guest disk of one image into a new (or, with -n,
 * existing) image, keeping it sparse: zero extents are skipped on a freshly
 * created target and written as zeroes on an existing one; data is written in
 * aligned units, skipping units that are all zeroes, as qemu-img's -S 4k
 * default does. -c stores each target cluster compressed.
 */
import * as fs from 'node:fs';
import { BlockError } from '../errors.js';
import { openImage } from '../graph/open.js';
import type { BlockNode } from '../node.js';
import { Qcow2Image } from '../formats/qcow2/image.js';
import { createImage } from './create.js';
import { copyBitmap } from '../formats/qcow2/bitmap-ops.js';
import { BME_FLAG_IN_USE, type Qcow2Bitmap } from '../formats/qcow2/bitmaps.js';
import { emitWarning } from '../warnings.js';
import type { ConvertRequest } from '../../adapters/adapter.js';
import { keySecretInOptions, mergeSecrets, type SecretsLike } from '../crypto/secret.js';

/** The Adapter contract's convert request: -f, -O, -o, -c, -n, -B/-F. */
export type ConvertImageRequest = ConvertRequest & { secrets?: SecretsLike };

const CHUNK = 2 * 1024 * 1024;
const MIN_SPARSE = 4096;
const READ_AHEAD = 4;

export async function convertImage(req: ConvertImageRequest): Promise<void> {
  if (req.target.imageOpts && !req.noCreate) {
    throw new BlockError('option-conflict', '--target-image-opts requires use of -n flag', { option: 'target-image-opts' });
  }
  // one set of secret objects serves the whole command, as qemu-img's --object does
  const secrets = mergeSecrets(req.secrets, req.source.secrets, req.target.secrets);
  const src = await openImage(req.source.filename, { format: req.source.format, imageOpts: req.source.imageOpts, forceShare: req.source.forceShare, secrets, keySecret: req.source.keySecret, readOnly: true });
  let created = false;
  let dst: BlockNode | null = null;
  try {
    if (req.compress && req.target.format !== 'qcow2' && req.target.format !== 'vmdk') {
      throw new BlockError('unsupported', `Compression not supported for this file format (${req.target.format})`, { option: 'compress' });
    }
    if (req.compress && /(^|,)(encrypt\.format=|encryption=(on|true|yes))/.test(req.options ?? '')) {
      throw new BlockError('unsupported', 'Compression and encryption not supported at the same time', { option: 'compress' });
    }
    // --bitmaps: what can be copied is settled before the target is made (7.2's messages)
    const bitmaps: Qcow2Bitmap[] = [];
    if (req.skipBrokenBitmaps && !req.bitmaps) throw new BlockError('invalid-option', 'Use of --skip-broken-bitmaps requires --bitmaps', { option: 'skip-broken-bitmaps' });
    if (req.bitmaps) {
      if (!(src instanceof Qcow2Image)) throw new BlockError('unsupported', 'Source lacks bitmap support', { option: 'bitmaps' });
      for (const b of src.bitmaps?.bitmaps ?? []) {
        if (!(b.flags & BME_FLAG_IN_USE)) bitmaps.push(b);
        else if (req.skipBrokenBitmaps) emitWarning(`Skipping inconsistent bitmap '${b.name}'`);
        else throw new BlockError('malformed', `Cannot copy inconsistent bitmap '${b.name}'. Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it`, { option: 'bitmaps', field: 'bitmap directory' });
      }
      if (req.target.format !== 'qcow2') throw new BlockError('unsupported', `Format driver '${req.target.format}' does not support bitmaps`, { option: 'bitmaps' });
    }
    if (!req.noCreate) {
      await createImage({
        format: req.target.format, filename: req.target.filename, size: src.size(), options: req.options,
        backingFile: req.backingFile, backingFormat: req.backingFormat, secrets,
      });
      created = true;
    }
    // --target-image-opts: the target is an option list (which names its own format)
    const targetOpts = req.target.imageOpts ? { imageOpts: true } : { format: req.target.format };
    // the target opens with the key-secret its -o text named (qemu-img's img_add_key_secrets)
    dst = await openImage(req.target.filename, { ...targetOpts, readOnly: false, cacheUnsafe: true, secrets, keySecret: req.target.keySecret ?? keySecretInOptions(req.options) });
    if (dst.size() < src.size() && req.noCreate) {
      throw new BlockError('invalid-size', `Target is smaller than the source (${dst.size()} < ${src.size()})`);
    }
    const zeroInit = !req.noCreate && !req.backingFile;
    const topOnly = !!req.backingFile;
    // No flush at the end: qemu-img convert writes its target with cache=unsafe by default.
    // a target that takes only compressed writes (vmdk streamOptimized) gets them, as qemu-img gives them
    const needsCompressed = (dst as { needsCompressedWrites?: boolean }).needsCompressedWrites === true;
    await copy(src, dst, { zeroInit, topOnly, compress: !!req.compress || needsCompressed });
    if (req.bitmaps) {
      if (!(dst instanceof Qcow2Image) || dst.header.version < 3) throw new BlockError('unsupported', `Format driver '${dst.driver}' does not support bitmaps`, { option: 'bitmaps' });
      for (const b of bitmaps) await copyBitmap(dst, src as Qcow2Image, b);
    }
  } catch (e) {
    if (dst) await dst.close().catch(() => undefined);
    dst = null;
    // Nothing half-converted stays behind.
    if (created) fs.rmSync(req.target.filename, { force: true });
    throw e;
  } finally {
    await dst?.close();
    await src.close();
  }
}

type Work = { kind: 'zero'; off: number; len: number } | { kind: 'data'; off: number; len: number };

/** The source, extent by extent, as zero runs to skip or write and data chunks to copy. */
async function* plan(src: BlockNode, unit: number, topOnly: boolean): AsyncGenerator<Work> {
  const size = src.size();
  let off = 0;
  while (off < size) {
    const st = await src.blockStatus(off, Math.min(size - off, CHUNK * 16));
    const end = Math.min(size, off + st.length);
    // With -B, what the source takes from its own backing file is left to the
    // target's backing file; what reads as zero in the source itself is written as zero.
    if (topOnly && st.depth > 0) {
      off = end;
      continue;
    }
    // What reads as zero is a zero run even where the source has it allocated (a flat vmdk
    // extent's hole is data and zero): qemu-img's convert_iteration_sectors looks at the zero
    // flag first, and the target gets the same bytes without the source being read.
    if (st.zero) {
      yield { kind: 'zero', off, len: end - off };
      off = end;
      continue;
    }
    for (let pos = off; pos < end;) {
      // Chunks end on unit boundaries so the skipped runs line up with target clusters.
      const chunkEnd = Math.min(end, Math.floor((pos + CHUNK) / unit) * unit || pos + CHUNK);
      yield { kind: 'data', off: pos, len: chunkEnd - pos };
      pos = chunkEnd;
    }
    off = end;
  }
}

/**
 * Reads run ahead of the writer, a few chunks deep, so source and target I/O
 * overlap (qemu-img keeps several requests in flight too). Writes stay in
 * guest order: a qcow2 target then allocates exactly as qemu-img's does.
 */
async function copy(src: BlockNode, dst: BlockNode, o: { zeroInit: boolean; topOnly: boolean; compress: boolean }): Promise<void> {
  if (o.compress) return copyCompressed(src, dst as unknown as CompressedTarget, o);
  const cs = dst instanceof Qcow2Image ? dst.clusterSize : 0;
  const unit = Math.max(MIN_SPARSE, cs);
  const inflight: Array<{ w: Work; data: Promise<Buffer> | null }> = [];
  const drain = async () => {
    const { w, data } = inflight.shift()!;
    if (w.kind === 'zero') {
      if (!o.zeroInit) await dst.writeZeroes(w.off, w.len, { unmap: true });
    } else {
      await writeSparse(dst, w.off, await data!, unit, o);
    }
  };
  for await (const w of plan(src, unit, o.topOnly)) {
    inflight.push({ w, data: w.kind === 'data' ? src.read(w.off, w.len) : null });
    if (inflight.length >= READ_AHEAD) await drain();
  }
  while (inflight.length) await drain();
}

/**
 * Compressed targets are written a whole cluster at a time: a cluster that is
 * not entirely zero is read in full (even where the source has a hole) and
 * stored compressed, as qemu-img convert -c does.
 */
type CompressedTarget = BlockNode & { clusterSize: number; writeCompressed(offset: number, data: Buffer): Promise<void> };

async function copyCompressed(src: BlockNode, dst: CompressedTarget, o: { zeroInit: boolean; topOnly: boolean }): Promise<void> {
  const size = src.size();
  const cs = dst.clusterSize;
  if (!cs) throw new BlockError('unsupported', `Compression not supported for this target (${dst.driver} without clusters)`, { option: 'compress' });
  for (let off = 0; off < size; off += cs) {
    const n = Math.min(cs, size - off);
    const st = await src.blockStatus(off, n);
    if (st.length >= n && ((st.zero && !st.data) || (o.topOnly && st.depth > 0))) {
      if (st.zero && st.depth === 0 && !o.zeroInit) await dst.writeZeroes(off, n, { unmap: true });
      continue;
    }
    const buf = await src.read(off, n);
    if (isZero(buf, 0, n)) {
      if (!o.zeroInit) await dst.writeZeroes(off, n, { unmap: true });
      continue;
    }
    await dst.writeCompressed(off, buf);
  }
}

async function writeSparse(dst: BlockNode, base: number, buf: Buffer, unit: number, o: { zeroInit: boolean; compress: boolean }): Promise<void> {
  let i = 0;
  while (i < buf.length) {
    const uEnd = Math.min(buf.length, Math.floor((base + i) / unit) * unit + unit - base);
    const zero = isZero(buf, i, uEnd);
    // extend the run while units keep the same kind
    let j = uEnd;
    while (j < buf.length) {
      const nEnd = Math.min(buf.length, j + unit);
      if (isZero(buf, j, nEnd) !== zero) break;
      j = nEnd;
    }
    if (!zero) {
      await dst.write(base + i, buf.subarray(i, j));
    } else if (!o.zeroInit) {
      await dst.writeZeroes(base + i, j - i, { unmap: true });
    }
    i = j;
  }
}

const ZEROES = Buffer.alloc(64 * 1024);

/** memcmp against a zero buffer: far faster than a byte loop in JS. */
function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k += ZEROES.length) {
    const n = Math.min(ZEROES.length, end - k);
    if (ZEROES.compare(buf, k, k + n, 0, n) !== 0) return false;
  }
  return true;
}
