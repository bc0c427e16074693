/**
 * Hostile dmg images: a valid UDIF file from the fixture writer (one blkx table of
 * zlib and zero chunks), taken apart and put back together with one thing wrong.
 */
import { deflateSync } from 'node:zlib';
import { koly, plist } from '../../runner/fixtures/udif-writer.js';
import type { ReadonlyDefect } from './readonly-images.js';

interface Parts { fork: Buffer; tables: Buffer[]; trailer: Buffer }

function parse(b: Buffer): Parts {
  const trailer = Buffer.from(b.subarray(b.length - 512));
  const xmlOffset = Number(trailer.readBigUInt64BE(0xd8));
  const xml = b.toString('utf8', xmlOffset, xmlOffset + Number(trailer.readBigUInt64BE(0xe0)));
  const tables = [...xml.matchAll(/<data>([^<]*)<\/data>/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return { fork: Buffer.from(b.subarray(0, xmlOffset)), tables, trailer };
}

/** Reassembles fork + plist (or the given plist text) + trailer, with the trailer's plist fields fixed up. */
function assemble(p: Parts, xmlText?: string): Buffer {
  const xml = Buffer.from(xmlText ?? plist(p.tables), 'utf8');
  const t = Buffer.from(p.trailer);
  const fresh = koly({ dataLength: p.fork.length, dataCrc: 0, xmlOffset: p.fork.length, xmlLength: xml.length, sectors: Number(t.readBigUInt64BE(0x1ec)) });
  fresh.copy(t, 0xd8, 0xd8, 0xe8);
  t.writeBigUInt64BE(BigInt(p.fork.length), 0x20);
  return Buffer.concat([p.fork, xml, t]);
}

const chunkAt = (i: number) => 204 + 40 * i;

function withTable(b: Buffer, edit: (t: Buffer) => void): Buffer {
  const p = parse(b);
  edit(p.tables[0]!);
  return assemble(p);
}

function trailerField(b: Buffer, at: number, v: bigint): Buffer {
  b.writeBigUInt64BE(v, b.length - 512 + at);
  return b;
}

/** Chunk 0 (zlib, the 0x11 data at the disk's start) becomes a stream of twice its size; later chunks move. */
function bomb(b: Buffer): Buffer {
  const p = parse(b);
  const t = p.tables[0]!;
  const off = Number(t.readBigUInt64BE(chunkAt(0) + 0x18));
  const len = Number(t.readBigUInt64BE(chunkAt(0) + 0x20));
  const sectors = Number(t.readBigUInt64BE(chunkAt(0) + 0x10));
  const z = deflateSync(Buffer.alloc(2 * 512 * sectors, 0x11));
  p.fork = Buffer.concat([p.fork.subarray(0, off), z, p.fork.subarray(off + len)]);
  t.writeBigUInt64BE(BigInt(z.length), chunkAt(0) + 0x20);
  const n = t.readUInt32BE(0xc8);
  for (let i = 1; i < n; i++) {
    const o = Number(t.readBigUInt64BE(chunkAt(i) + 0x18));
    if (o > off) t.writeBigUInt64BE(BigInt(o + z.length - len), chunkAt(i) + 0x18);
  }
  return assemble(p);
}

export const dmgDefects: Record<string, ReadonlyDefect> = {
  'koly magic is missing': { words: ['koly', 'UDIF trailer'], apply: (b) => { b.write('kolx', b.length - 512, 'latin1'); return b; } },
  'file is 100 bytes long': { words: ['koly', '512 bytes'], apply: (b) => b.subarray(0, 100) },
  'data fork offset is past the trailer': { words: ['DataForkOffset', 'data fork'], apply: (b) => trailerField(b, 0x18, BigInt(b.length)) },
  'data fork length runs past the end of the file': { words: ['DataForkLength', 'data fork'], apply: (b) => trailerField(b, 0x20, BigInt(b.length) * 2n) },
  'plist offset is past the trailer': { words: ['XMLOffset', 'property list', 'plist'], apply: (b) => trailerField(b, 0xd8, BigInt(b.length) - 100n) },
  'plist is not XML': { words: ['plist', 'XML', 'property list'], apply: (b) => assemble(parse(b), JSON.stringify({ 'resource-fork': { blkx: [{ Data: parse(b).tables[0]!.toString('base64') }] } })) },
  'plist has no blkx array': { words: ['blkx'], apply: (b) => assemble(parse(b), plist(parse(b).tables).replace('<key>blkx</key>', '<key>plst</key>')) },
  'mish block declares 2 million chunks': { words: ['NumberOfBlockChunks', 'chunks'], apply: (b) => withTable(b, (t) => t.writeUInt32BE(2_000_000, 0xc8)) },
  'a chunk points past the end of the data fork': { words: ['chunk offset', 'data fork'], apply: (b) => withTable(b, (t) => t.writeBigUInt64BE(1n << 40n, chunkAt(0) + 0x18)) },
  'a chunk is 2^40 bytes long': { words: ['chunk length', 'length'], apply: (b) => withTable(b, (t) => t.writeBigUInt64BE(1n << 40n, chunkAt(0) + 0x20)) },
  'a chunk has 2^31 sectors': { words: ['sector count'], apply: (b) => withTable(b, (t) => t.writeBigUInt64BE(1n << 31n, chunkAt(0) + 0x10)) },
  'two chunks overlap': { words: ['chunk sector', 'overlap'], apply: (b) => withTable(b, (t) => t.writeBigUInt64BE(0n, chunkAt(1) + 8)) },
  'a zlib chunk inflates beyond its sectors': { words: ['chunk', 'inflate', 'decompress'], apply: bomb },
  'a chunk is lzfse compressed': { words: ['unsupported chunk type'], apply: (b) => withTable(b, (t) => t.writeUInt32BE(0x80000007, chunkAt(0))) },
};
