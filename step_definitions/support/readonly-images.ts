/**
 * Images of the read-only formats (bochs, cloop, dmg) for the steps and tests:
 * made by their real producers from a raw source (bximage, create_compressed_fs,
 * and for dmg the reference's fixture writer, since no Debian tool writes UDIF),
 * and hostile variants of them, damaged here in code.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { execa } from 'execa';
import { writeUdif, type Layout } from '../../runner/fixtures/udif-writer.js';
import { dmgDefects } from './dmg-defects.js';

export interface SourceWrite { offset: number; length: number; pattern: number }

/** Where the built repository is (dist/step_definitions/support -> repo). */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The producer command of each format, as [command, args] with {source} and {image} placeholders. */
export function producerCommand(format: string, params: Record<string, string> = {}): [string, string[]] {
  switch (format) {
    case 'bochs':
      return ['bximage', ['-func=convert', '-imgmode=growing', '-q', '{source}', '{image}']];
    case 'cloop':
      return ['create_compressed_fs', ['-q', '-B', params.block ?? '65536', '-L', params.level ?? '9', '{source}', '{image}']];
    case 'dmg':
      return [process.execPath, [join(REPO, 'dist', 'runner', 'fixtures', 'udif-writer.js'), '--layout', params.layout ?? 'zlib', ...(params.chunk ? ['--chunk', params.chunk] : []), ...(params.parts ? ['--parts', params.parts] : []), '{source}', '{image}']];
    default:
      throw new Error(`no producer for ${format}`);
  }
}

export function producerTool(format: string): string {
  return format === 'bochs' ? 'bximage' : format === 'cloop' ? 'create_compressed_fs' : 'node';
}

/** A raw disk of `size` bytes with the writes applied (each a fill with its pattern byte). */
export function rawSource(size: number, writes: SourceWrite[]): Buffer {
  const b = Buffer.alloc(size);
  for (const w of writes) b.fill(w.pattern, w.offset, Math.min(size, w.offset + w.length));
  return b;
}

/** Runs the format's producer on a raw source made from the writes; the image lands at `image`. */
export async function produce(format: string, image: string, size: number, writes: SourceWrite[], params: Record<string, string> = {}): Promise<void> {
  if (format === 'dmg') {
    // the fixture writer is our own code: run it in-process (the corpus recipes run its command line)
    await writeFile(image, writeUdif(rawSource(size, writes), { layout: (params.layout ?? 'zlib') as Layout, chunkSectors: Number(params.chunk ?? 256), parts: Number(params.parts ?? 1) }));
    return;
  }
  const source = `${image}.source.raw`;
  await writeFile(source, rawSource(size, writes));
  await rm(image, { force: true });
  const [cmd, args] = producerCommand(format, params);
  try {
    await execa(cmd, args.map((a) => a.replace('{source}', source).replace('{image}', image)), { timeout: 60_000, stdin: 'ignore' });
  } finally {
    await rm(source, { force: true });
  }
}

export interface ReadonlyDefect {
  /** words of which the refusal must name at least one */
  words: string[];
  /** damages the image's bytes (returns the new file contents) */
  apply(b: Buffer): Buffer;
}

function u32le(b: Buffer, at: number, v: number): Buffer { b.writeUInt32LE(v >>> 0, at); return b; }
function u32be(b: Buffer, at: number, v: number): Buffer { b.writeUInt32BE(v >>> 0, at); return b; }

/** bochs header: catalog entries at 0x48, bitmap bytes at 0x4c, extent bytes at 0x50, disk bytes at 0x58 (V2). */
const BOCHS: Record<string, ReadonlyDefect> = {
  'catalog entry points past the end of the file': { words: ['catalog'], apply: (b) => u32le(b, b.readUInt32LE(0x44), 0x00ffffff) },
  'extent size is 0': { words: ['extent'], apply: (b) => u32le(b, 0x50, 0) },
  'extent size is 2^31': { words: ['extent'], apply: (b) => u32le(b, 0x50, 0x80000000) },
  'extent size is 3000': { words: ['extent'], apply: (b) => u32le(b, 0x50, 3000) },
  'catalog has 2^20+1 entries': { words: ['catalog'], apply: (b) => u32le(b, 0x48, 0x100001) },
  'catalog has 2^31 entries': { words: ['catalog'], apply: (b) => u32le(b, 0x48, 0x80000000) },
  'catalog is too small for the disk': { words: ['catalog'], apply: (b) => u32le(b, 0x48, 1) },
  'catalog ends past the end of the file': { words: ['catalog', 'header'], apply: (b) => u32le(b, 0x44, b.length - 16) },
  'bitmap size is 0': { words: ['bitmap'], apply: (b) => u32le(b, 0x4c, 0) },
  'disk size is 2^62 bytes': { words: ['disk', 'catalog'], apply: (b) => { b.writeBigUInt64LE(1n << 62n, 0x58); return b; } },
  'version is 3': { words: ['version'], apply: (b) => u32le(b, 0x40, 0x30000) },
  'file is 100 bytes long': { words: ['header', 'bochs'], apply: (b) => b.subarray(0, 100) },
};

/** cloop V2: "#!/bin/sh" preamble of 128 bytes, then block size (u32 BE) at 128, block count at 132, offsets (u64 BE) from 136. */
const CLOOP_OFFSETS = 136;
function cloopOffset(b: Buffer, i: number): number { return Number(b.readBigUInt64BE(CLOOP_OFFSETS + 8 * i)); }
function setCloopOffset(b: Buffer, i: number, v: number | bigint): Buffer { b.writeBigUInt64BE(BigInt(v), CLOOP_OFFSETS + 8 * i); return b; }
const CLOOP: Record<string, ReadonlyDefect> = {
  'block size is 0': { words: ['block size', 'block_size'], apply: (b) => u32be(b, 128, 0) },
  'block size is 1000': { words: ['block size', 'block_size'], apply: (b) => u32be(b, 128, 1000) },
  'block size is 2^31': { words: ['block size', 'block_size'], apply: (b) => u32be(b, 128, 0x80000000) },
  'block count is 2^32-1': { words: ['n_blocks'], apply: (b) => u32be(b, 132, 0xffffffff) },
  'offset table ends past the end of the file': { words: ['offset', 'n_blocks', 'compressed block'], apply: (b) => u32be(b, 132, Math.floor(b.length / 8)) },
  'last offset points past the end of the file': { words: ['offset'], apply: (b) => setCloopOffset(b, b.readUInt32BE(132), b.length + 65536) },
  'offsets are not increasing': { words: ['offset'], apply: (b) => setCloopOffset(b, 1, cloopOffset(b, 0) - 1) },
  'last block is longer than any block can be': { words: ['offset'], apply: (b) => cloopLongBlock(b) },
  'a block inflates beyond the block size': { words: ['block', 'inflate', 'decompress'], apply: (b) => cloopBomb(b) },
  'a block is not zlib data': { words: ['block', 'inflate', 'decompress', 'zlib'], apply: (b) => { b.fill(0xff, cloopOffset(b, 0), cloopOffset(b, 1)); return b; } },
  'file is 100 bytes long': { words: ['header', 'cloop', 'block'], apply: (b) => b.subarray(0, 100) },
};

/** The compressed blocks of a cloop file, in order. */
function cloopBlocks(b: Buffer): Buffer[] {
  const n = b.readUInt32BE(132);
  return Array.from({ length: n }, (_, i) => b.subarray(cloopOffset(b, i), cloopOffset(b, i + 1)));
}

/** A cloop file with the same header and block size, holding these compressed blocks. */
function cloopWith(b: Buffer, blocks: Buffer[]): Buffer {
  const head = Buffer.from(b.subarray(0, CLOOP_OFFSETS + 8 * (blocks.length + 1)));
  head.writeUInt32BE(blocks.length, 132);
  let at = head.length;
  for (let i = 0; i <= blocks.length; i++) {
    setCloopOffset(head, i, at);
    at += blocks[i]?.length ?? 0;
  }
  return Buffer.concat([head, ...blocks]);
}

/** Block 0 becomes a zlib stream of twice the block size of zeroes (a zip bomb in miniature). */
function cloopBomb(b: Buffer): Buffer {
  const blocks = cloopBlocks(b);
  blocks[0] = deflateSync(Buffer.alloc(2 * b.readUInt32BE(128)));
  return cloopWith(b, blocks);
}

/** The last block gets 2 x block size + 1 KiB of trailing bytes after its zlib stream. */
function cloopLongBlock(b: Buffer): Buffer {
  const blocks = cloopBlocks(b);
  const last = blocks.length - 1;
  blocks[last] = Buffer.concat([blocks[last]!, Buffer.alloc(2 * b.readUInt32BE(128) + 1024, 0xee)]);
  return cloopWith(b, blocks);
}

export function readonlyDefect(format: string, description: string): ReadonlyDefect {
  const table = format === 'bochs' ? BOCHS : format === 'cloop' ? CLOOP : format === 'dmg' ? dmgDefects : {};
  const d = table[description];
  if (!d) throw new Error(`no ${format} defect "${description}" (known: ${Object.keys(table).join('; ')})`);
  return d;
}

export async function damage(path: string, defect: ReadonlyDefect): Promise<void> {
  await writeFile(path, defect.apply(await readFile(path)));
}
