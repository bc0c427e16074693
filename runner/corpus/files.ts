/**
 * File helpers of the corpus: hashing, and the canonical sparse copy.
 *
 * qemu-img map (and so the recorded map) depends on which ranges of the host
 * file are holes: qemu asks the file system (SEEK_DATA/SEEK_HOLE), and a git
 * checkout writes every byte. So images are always examined in a canonical
 * layout: every all-zero 4 KiB block is a hole, every other block is written.
 * Generation and verification both use it, so maps agree on any checkout.
 */
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
export async function maskedSha256(file: string, masks: ReadonlyArray<{ offset?: number; length?: number; regex?: string; file?: string }>): Promise<string> {
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
  for (const m of masks) {
    if (m.file !== undefined && m.file !== base) continue;
    if (m.regex !== undefined) {
      const text = buf.toString('latin1');
      for (const hit of text.matchAll(new RegExp(m.regex, 'g'))) buf.fill(0, hit.index!, hit.index! + hit[0].length);
    } else {
      const start = m.offset! < 0 ? buf.length + m.offset! : m.offset!;
      if (start >= 0 && start < buf.length) buf.fill(0, start, Math.min(buf.length, start + m.length!));
    }
  }
  return createHash('sha256').update(buf).digest('hex');
}
