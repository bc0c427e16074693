/**
 * File helpers of the corpus: hashing, and the canonical sparse copy.
 *
 * qemu-img map (and so the recorded map) depends on which ranges of the host
 * file are holes: qemu asks the file system (SEEK_DATA/SEEK_HOLE), and a git
 * checkout writes every byte. So images are always examined in a canonical
 * layout: every all-zero 4 KiB block is a hole, every other block is written.
 * Generation and verification both use it, so maps agree on any checkout.
 */
import { crc32c } from '../../reference/formats/vhdx/crc32c.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export const SPARSE_BLOCK = 4096;

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function isZero(buf: Buffer, len: number): boolean {
  for (let i = 0; i < len; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Copy src to dst (replacing it) with all-zero 4 KiB blocks left as holes. */
export async function sparseCopy(src: string, dst: string): Promise<void> {
  await rm(dst, { force: true });
  const input = await open(src, 'r');
  const output = await open(dst, 'wx');
  try {
    const { size } = await input.stat();
    const chunk = Buffer.alloc(256 * SPARSE_BLOCK);
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await input.read(chunk, 0, chunk.length, pos);
      if (bytesRead === 0) break;
      for (let off = 0; off < bytesRead; off += SPARSE_BLOCK) {
        const n = Math.min(SPARSE_BLOCK, bytesRead - off);
        const block = chunk.subarray(off, off + n);
        if (!isZero(block, n)) await output.write(block, 0, n, pos + off);
      }
      pos += bytesRead;
    }
    await output.truncate(size);
  } finally {
    await input.close();
    await output.close();
  }
}

/** Rewrite a file in place into the canonical sparse layout. */
export async function canonicaliseInPlace(file: string): Promise<void> {
  const tmp = `${file}.sparse-tmp`;
  await sparseCopy(file, tmp);
  const { rename } = await import('node:fs/promises');
  await rename(tmp, file);
}

/** A fresh scratch directory under <repo>/.tmp (git-ignored); caller removes it. */
export async function scratchDir(repo: string, prefix: string): Promise<string> {
  const base = join(repo, '.tmp');
  await mkdir(base, { recursive: true });
  return mkdtemp(join(base, `${prefix}-`));
}

/** Masks are for headers and footers of small images; a bigger file is read whole no further. */
const MASKED_MAX_BYTES = 256 * 1024 * 1024;

/**
 * sha256 of the file with the masks' ranges zeroed (ranges outside the file are
 * ignored, so a mask never makes two different lengths equal). Only masks
 * without `file` (or naming this file's base name) apply.
 */
type MaskLike = { offset?: number; length?: number; regex?: string; cut?: boolean; file?: string; checksum?: { algorithm: 'vpc' | 'crc32c'; offset: number; length: number } };

/** The checksum a mask names, over `buf`'s range with the checksum field (at `at`) counted as zero. */
function checksumOf(buf: Buffer, c: NonNullable<MaskLike['checksum']>, at: number): Buffer | null {
  const start = c.offset < 0 ? buf.length + c.offset : c.offset;
  if (start < 0 || start + c.length > buf.length || at < start || at + 4 > start + c.length) return null;
  const range = Buffer.from(buf.subarray(start, start + c.length));
  range.fill(0, at - start, at - start + 4);
  const out = Buffer.alloc(4);
  if (c.algorithm === 'crc32c') out.writeUInt32LE(crc32c(range));
  else {
    let sum = 0;
    for (const b of range) sum += b;
    out.writeUInt32BE(~sum >>> 0);
  }
  return out;
}

/** Longest run after a text's NUL taken for the residue of a rewrite that shortened it (a CID is at most 8 hex digits). */
const RESIDUE_MAX = 16;

/**
 * A text rewritten in place shorter than it was (qemu's vmdk_write_cid with a
 * CID of fewer hex digits) keeps, after its new NUL, the last bytes of the old
 * text up to the old NUL; those are the last bytes of the new text too, since
 * the two share their tail. Runs after the NUL that repeat the text's own
 * suffix are zeroed (repeatedly, for several rewrites), so a mask that cuts a
 * field out of the text judges a rewritten file and a freshly written one
 * alike, whatever the CIDs' lengths.
 */
export function zeroRewriteResidue(buf: Buffer, from: number): void {
  const nul = buf.indexOf(0, from);
  if (nul < 0) return;
  let at = nul;
  while (at + 1 < buf.length && buf[at + 1] !== 0) {
    const next = buf.indexOf(0, at + 1);
    const runEnd = next < 0 ? buf.length : next;
    const m = runEnd - (at + 1);
    if (next < 0 || m > RESIDUE_MAX || m > nul) return;
    if (!buf.subarray(at + 1, runEnd).equals(buf.subarray(nul - m, nul))) return;
    buf.fill(0, at + 1, runEnd);
    at = runEnd;
  }
}

export async function maskedSha256(file: string, masks: ReadonlyArray<MaskLike>): Promise<string> {
  const fh = await open(file, 'r');
  let buf: Buffer;
  try {
    const { size } = await fh.stat();
    if (size > MASKED_MAX_BYTES) throw new Error(`${file}: ${size} bytes is too big to compare with masks (limit ${MASKED_MAX_BYTES})`);
    buf = Buffer.alloc(size);
    await fh.read(buf, 0, size, 0);
  } finally {
    await fh.close();
  }
  const base = file.slice(file.lastIndexOf('/') + 1);
  const mine = masks.filter((m) => m.file === undefined || m.file === base);
  // Checksums that hold in the file as it is are recomputed once the masks are applied.
  const holding = new Set<MaskLike>();
  for (const m of mine) {
    if (!m.checksum || m.offset === undefined) continue;
    const at = m.offset < 0 ? buf.length + m.offset : m.offset;
    const want = checksumOf(buf, m.checksum, at);
    if (want && want.equals(buf.subarray(at, at + 4))) holding.add(m);
  }
  for (const m of masks) {
    if (m.file !== undefined && m.file !== base) continue;
    if (m.regex !== undefined) {
      const text = buf.toString('latin1');
      const hits = [...text.matchAll(new RegExp(m.regex, 'g'))];
      if (m.cut) for (const hit of hits) zeroRewriteResidue(buf, hit.index! + hit[0].length);
      // (cut: last match first, so earlier matches keep their positions)
      for (const hit of m.cut ? hits.reverse() : hits) {
        const at = hit.index!;
        const n = hit[0].length;
        if (!m.cut) {
          buf.fill(0, at, at + n);
          continue;
        }
        const nul = buf.indexOf(0, at + n);
        const end = nul < 0 ? buf.length : nul;
        buf.copy(buf, at, at + n, end);
        buf.fill(0, end - n, end);
      }
    } else {
      const start = m.offset! < 0 ? buf.length + m.offset! : m.offset!;
      if (start >= 0 && start < buf.length) buf.fill(0, start, Math.min(buf.length, start + m.length!));
    }
  }
  for (const m of holding) {
    const at = m.offset! < 0 ? buf.length + m.offset! : m.offset!;
    checksumOf(buf, m.checksum!, at)!.copy(buf, at);
  }
  return createHash('sha256').update(buf).digest('hex');
}
