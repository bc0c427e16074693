/**
 * vpc and vhdx images for the steps: where their random fields are (so two
 * images can be compared outside them), hostile images (a valid image made by
 * qemu-img, then one field damaged here, in code), and a vhdx whose last BAT
 * update was left in the log (a writer that died before the replay).
 */
import { open, readFile, stat } from 'node:fs/promises';
import { execa } from 'execa';
import { crc32c, crc32cWithHole } from '../../reference/formats/vhdx/crc32c.js';
import { vpcChecksum } from '../../reference/formats/vpc.js';

export interface Range { offset: number; length: number }

/**
 * Byte ranges qemu-img fills at random, and the checksums over them, for a
 * file of this format (read from the file's own layout).
 *   vpc: footer timestamp, checksum and UUID, at the start (dynamic) and the end.
 *   vhdx: both headers' checksum, sequence number and three GUIDs; the page 83
 *   GUID; every log entry's checksum and log GUID.
 */
export async function randomFields(path: string, format: string): Promise<Range[]> {
  const buf = await readFile(path);
  const out: Range[] = [];
  if (format === 'vpc') {
    const footers = [buf.length - 512];
    if (buf.toString('latin1', 0, 8) === 'conectix') footers.push(0);
    for (const f of footers) out.push({ offset: f + 0x18, length: 4 }, { offset: f + 0x40, length: 20 });
    return out;
  }
  if (format === 'vhdx') {
    for (const h of [0x10000, 0x20000]) out.push({ offset: h + 4, length: 60 });
    const metaOffset = Number(buf.readBigUInt64LE(0x30040));
    out.push({ offset: metaOffset + 0x10000 + 16, length: 16 });
    const logOffset = Number(buf.readBigUInt64LE(0x10048));
    const logLength = buf.readUInt32LE(0x10044);
    for (let s = logOffset; s < logOffset + logLength && s < buf.length; s += 4096) {
      if (buf.toString('latin1', s, s + 4) === 'loge') out.push({ offset: s + 4, length: 4 }, { offset: s + 32, length: 16 });
    }
    return out;
  }
  throw new Error(`no random fields known for ${format}`);
}

/** Differences between two files outside the ranges (first few), or [] when equal there. */
export async function differencesOutside(a: string, b: string, ranges: Range[]): Promise<string[]> {
  const [x, y] = [await readFile(a), await readFile(b)];
  if (x.length !== y.length) return [`lengths differ: ${x.length} and ${y.length}`];
  const masked = new Uint8Array(x.length);
  for (const r of ranges) masked.fill(1, r.offset, Math.min(x.length, r.offset + r.length));
  const out: string[] = [];
  for (let i = 0; i < x.length && out.length < 5; i++) {
    if (x[i] !== y[i] && !masked[i]) out.push(`byte 0x${i.toString(16)}: 0x${x[i].toString(16)} and 0x${y[i].toString(16)}`);
  }
  return out;
}

/** Checksums that must hold in a vpc or vhdx file: footer/header checksums, every header and region table CRC. */
export async function checksumProblems(path: string, format: string): Promise<string[]> {
  const buf = await readFile(path);
  const bad: string[] = [];
  if (format === 'vpc') {
    const footers = [buf.length - 512, ...(buf.toString('latin1', 0, 8) === 'conectix' ? [0] : [])];
    for (const f of footers) {
      const footer = buf.subarray(f, f + 512);
      if (vpcChecksum(footer, 0x40) !== footer.readUInt32BE(0x40)) bad.push(`footer at ${f}`);
    }
    if (footers.length === 2) {
      const h = buf.subarray(512, 1536);
      if (vpcChecksum(h, 0x24) !== h.readUInt32BE(0x24)) bad.push('dynamic disk header');
    }
  } else {
    for (const h of [0x10000, 0x20000]) if (crc32cWithHole(buf.subarray(h, h + 4096), 4) !== buf.readUInt32LE(h + 4)) bad.push(`header at ${h}`);
    for (const r of [0x30000, 0x40000]) if (crc32cWithHole(buf.subarray(r, r + 65536), 4) !== buf.readUInt32LE(r + 4)) bad.push(`region table at ${r}`);
    // every log entry QEMU (or the IUT) left in the log: CRC-32C over its whole length
    const logOffset = Number(buf.readBigUInt64LE(0x10048));
    const logLength = buf.readUInt32LE(0x10044);
    for (let e = logOffset; e < logOffset + logLength && e + 4096 <= buf.length; e += 4096) {
      if (buf.toString('latin1', e, e + 4) !== 'loge') continue;
      const len = buf.readUInt32LE(e + 8);
      if (len < 4096 || len % 4096 || e + len > logOffset + logLength) continue; // a stale or wrapped entry QEMU would not replay
      if (crc32cWithHole(buf.subarray(e, e + len), 4) !== buf.readUInt32LE(e + 4)) bad.push(`log entry at ${e}`);
    }
  }
  return bad;
}

// --- hostile images ---

type Put = (offset: number, bytes: Buffer) => Promise<void>;

export interface Defect {
  field: string;
  /** words any one of which names the field in an error message */
  words: string[];
  /** the valid image it starts from */
  base: 'dynamic' | 'fixed';
  apply(path: string, put: Put, file: Buffer): Promise<void>;
}

const be32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
const be64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b; };
const le32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const le64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };

/** Rewrites a vpc footer field and its checksum, so only the field is wrong. */
async function vpcFooterField(put: Put, file: Buffer, at: number, bytes: Buffer): Promise<void> {
  for (const f of file.toString('latin1', 0, 8) === 'conectix' ? [0, file.length - 512] : [file.length - 512]) {
    const footer = Buffer.from(file.subarray(f, f + 512));
    bytes.copy(footer, at);
    footer.writeUInt32BE(vpcChecksum(footer, 0x40), 0x40);
    await put(f, footer);
  }
}

/** Rewrites a field of the dynamic disk header (at 512) and its checksum. */
async function vpcDynField(put: Put, file: Buffer, at: number, bytes: Buffer): Promise<void> {
  const h = Buffer.from(file.subarray(512, 1536));
  bytes.copy(h, at);
  h.writeUInt32BE(vpcChecksum(h, 0x24), 0x24);
  await put(512, h);
}

const vd = (field: string, words: string[], base: Defect['base'], apply: Defect['apply']): Defect => ({ field, words: [field, ...words], base, apply });

// vpc base (dynamic): qemu-img create -f vpc 8M, 64 KiB written at 64 KiB: BAT at 1536, one block at 2048.
const VPC: Record<string, Defect> = {
  'footer checksum is wrong': vd('checksum', ['header checksum'], 'dynamic', (_p, put) => put(0x40, be32(0x12345678))),
  'cookie is wrong at both ends': vd('cookie', ['conectix', 'invalid VPC image'], 'dynamic', async (_p, put, f) => { await put(0, Buffer.from('connectx')); await put(f.length - 512, Buffer.from('connectx')); }),
  'dynamic header offset points past the end of the file': vd('data_offset', ['dynamic VHD header', 'header magic'], 'dynamic', (_p, put, f) => vpcFooterField(put, f, 0x10, be64(1n << 40n))),
  'dynamic header cookie is wrong': vd('cookie', ['header magic', 'cxsparse'], 'dynamic', (_p, put) => put(512, Buffer.from('cxspares'))),
  'block_size is 3000': vd('block_size', ['block size'], 'dynamic', (_p, put, f) => vpcDynField(put, f, 0x20, be32(3000))),
  'max_table_entries is too small for the disk': vd('max_table_entries', ['page table too small'], 'dynamic', (_p, put, f) => vpcDynField(put, f, 0x1c, be32(1))),
  'max_table_entries is 2^31-1': vd('max_table_entries', ['max table entries', 'truncated'], 'dynamic', (_p, put, f) => vpcDynField(put, f, 0x1c, be32(0x7fffffff))),
  'table_offset points past the end of the file': vd('table_offset', ['truncated', 'pagetable'], 'dynamic', (_p, put, f) => vpcDynField(put, f, 0x10, be64(1n << 40n))),
  'a BAT entry points past the end of the file': vd('bat', ['truncated', 'free_data_block_offset'], 'dynamic', (_p, put) => put(1536 + 4, be32(0x100000))),
  'a BAT entry points into the dynamic header': vd('bat', [], 'dynamic', (_p, put) => put(1536, be32(1))),
  'two BAT entries point at the same block': vd('bat', [], 'dynamic', (_p, put) => put(1536 + 4, be32(4))),
  'disk size is 2^50 bytes': vd('current_size', ['File too large', 'too large'], 'dynamic', async (_p, put, f) => {
    await vpcFooterField(put, f, 0x38, Buffer.from([0xff, 0xff, 16, 255]));
    await vpcFooterField(put, await readFile(_p), 0x30, be64(1n << 50n));
  }),
  'fixed footer claims 1 TiB': vd('current_size', ['does not fit', 'File too large'], 'fixed', async (_p, put, f) => {
    await vpcFooterField(put, f, 0x1c, Buffer.from('qem2'));
    await vpcFooterField(put, await readFile(_p), 0x30, be64(1n << 40n));
  }),
};

// --- vhdx ---

const VHDX_MiB = 1024 * 1024;

/** Rewrites header `i` (0 or 1) with `edit` applied, CRC recomputed unless `keepCrc`. */
async function vhdxHeader(put: Put, file: Buffer, i: number, edit: (h: Buffer) => void, keepCrc = false): Promise<void> {
  const at = 0x10000 * (i + 1);
  const h = Buffer.from(file.subarray(at, at + 4096));
  edit(h);
  if (!keepCrc) h.writeUInt32LE(crc32cWithHole(h, 4), 4);
  await put(at, h);
}

/** Rewrites both region tables with `edit` applied and the CRC recomputed. */
async function vhdxRegions(put: Put, file: Buffer, edit: (t: Buffer) => void): Promise<void> {
  for (const at of [0x30000, 0x40000]) {
    const t = Buffer.from(file.subarray(at, at + 65536));
    edit(t);
    t.writeUInt32LE(crc32cWithHole(t, 4), 4);
    await put(at, t);
  }
}

const LOG_OFFSET = VHDX_MiB;
const BAT_OFFSET = 2 * VHDX_MiB;
const META_OFFSET = 3 * VHDX_MiB;

/**
 * A log entry as the spec lays it out (one 4 KiB data descriptor per sector
 * of `data`, aimed at `target`), with the current header's log GUID set. The
 * entry's checksum is right unless `badCrc`.
 */
export function logEntry(opts: { guid: Buffer; sequence: bigint; target: number; data: Buffer; fileLength: number; badCrc?: boolean; badDescriptor?: boolean }): Buffer {
  const count = opts.data.length / 4096;
  const descSectors = Math.ceil((count + 2) / 128);
  const e = Buffer.alloc((descSectors + count) * 4096);
  e.write('loge', 0, 'latin1');
  e.writeUInt32LE(e.length, 8);
  e.writeBigUInt64LE(opts.sequence, 16);
  e.writeUInt32LE(count, 24);
  opts.guid.copy(e, 32);
  e.writeBigUInt64LE(BigInt(opts.fileLength), 48);
  e.writeBigUInt64LE(BigInt(opts.fileLength), 56);
  for (let i = 0; i < count; i++) {
    const d = 64 + 32 * i;
    const sector = opts.data.subarray(i * 4096, (i + 1) * 4096);
    e.write(opts.badDescriptor ? 'dezc' : 'desc', d, 'latin1');
    sector.copy(e, d + 4, 4092, 4096);
    sector.copy(e, d + 8, 0, 8);
    e.writeBigUInt64LE(BigInt(opts.target + i * 4096), d + 16);
    e.writeBigUInt64LE(opts.sequence, d + 24);
    const s = (descSectors + i) * 4096;
    e.write('data', s, 'latin1');
    e.writeUInt32LE(Number(opts.sequence >> 32n), s + 4);
    sector.copy(e, s + 8, 8, 4092);
    e.writeUInt32LE(Number(opts.sequence & 0xffffffffn), s + 4092);
  }
  e.writeUInt32LE((crc32c(e) ^ (opts.badCrc ? 1 : 0)) >>> 0, 4);
  return e;
}

/** Puts `entry` at the start of the log and its GUID into both headers (a log waiting for replay). */
async function vhdxDirtyLog(put: Put, file: Buffer, entry: (guid: Buffer) => Buffer): Promise<void> {
  const guid = Buffer.from('d1f7a0b2c3e44f5a8b6c7d8e9fa0b1c2', 'hex');
  await put(LOG_OFFSET, entry(guid));
  for (const i of [0, 1]) await vhdxHeader(put, file, i, (h) => guid.copy(h, 48));
}

/** The BAT sector of the base image with entry `i` set to `value`, as a log entry would carry it. */
function batSectorWith(file: Buffer, i: number, value: bigint): Buffer {
  const s = Buffer.from(file.subarray(BAT_OFFSET, BAT_OFFSET + 4096));
  s.writeBigUInt64LE(value, 8 * i);
  return s;
}

// vhdx base (dynamic): qemu-img create -f vhdx -o block_size=1M 8M, 64 KiB written at 64 KiB:
// log at 1 MiB, BAT at 2 MiB, metadata at 3 MiB, block 0 at 8 MiB, file 9 MiB.
const VHDX: Record<string, Defect> = {
  'headers both have a bad CRC': vd('header', ['No valid VHDX header'], 'dynamic', async (_p, put) => { await put(0x10004, le32(1)); await put(0x20004, le32(2)); }),
  'headers have the same sequence number but differ': vd('sequence_number', ['No valid VHDX header'], 'dynamic', async (_p, put, f) => {
    const seq = f.readBigUInt64LE(0x20008);
    await vhdxHeader(put, f, 0, (h) => { h.writeBigUInt64LE(seq, 8); h[20] ^= 0xff; });
  }),
  'signature is wrong': vd('signature', ['vhdxfile', 'not a VHDX'], 'dynamic', (_p, put) => put(0, Buffer.from('vhdxfilf'))),
  'log_offset is not a multiple of 1 MiB': vd('log_offset', ['log offset'], 'dynamic', async (_p, put, f) => { for (const i of [0, 1]) await vhdxHeader(put, f, i, (h) => h.writeBigUInt64LE(BigInt(LOG_OFFSET + 4096), 72)); }),
  'region table has a bad CRC': vd('region_table', ['region table'], 'dynamic', (_p, put) => put(0x30004, le32(0x1234))),
  'region table lists the BAT twice': vd('region_table', ['region table', 'twice', 'overlaps'], 'dynamic', (_p, put, f) => vhdxRegions(put, f, (t) => {
    t.writeUInt32LE(3, 8);
    t.copy(t, 16 + 64, 16, 48);
    t.writeBigUInt64LE(BigInt(5 * VHDX_MiB), 16 + 64 + 16);
  })),
  'region table regions overlap': vd('region_table', ['region table', 'overlaps'], 'dynamic', (_p, put, f) => vhdxRegions(put, f, (t) => t.writeBigUInt64LE(BigInt(BAT_OFFSET + VHDX_MiB / 2), 48 + 16))),
  'region table has 2048 entries': vd('region_table', ['region table', 'entry_count'], 'dynamic', (_p, put, f) => vhdxRegions(put, f, (t) => t.writeUInt32LE(2048, 8))),
  'BAT region overlaps the log': vd('region_table', ['region table', 'overlaps'], 'dynamic', (_p, put, f) => vhdxRegions(put, f, (t) => t.writeBigUInt64LE(BigInt(LOG_OFFSET), 32))),
  'metadata lacks the virtual disk size': vd('metadata', ['virtual disk size', 'virtualDiskSize'], 'dynamic', (_p, put) => put(META_OFFSET + 32 + 32, Buffer.alloc(16, 0x42))),
  'block_size is 3 MiB': vd('block_size', ['block size'], 'dynamic', (_p, put) => put(META_OFFSET + 0x10000, le32(3 * VHDX_MiB))),
  'virtual disk size is 2^62 bytes': vd('virtual_disk_size', ['virtual disk size', 'BAT region'], 'dynamic', (_p, put) => put(META_OFFSET + 0x10000 + 8, le64(1n << 62n))),
  'a BAT entry points past the end of the file': vd('bat', ['BAT entry', 'truncated'], 'dynamic', (_p, put) => put(BAT_OFFSET + 8, le64((1n << 40n) | 6n))),
  'a BAT entry points into the metadata region': vd('bat', ['BAT entry', 'overlaps'], 'dynamic', (_p, put) => put(BAT_OFFSET, le64(BigInt(META_OFFSET) | 6n))),
  'a BAT entry points into the header section': vd('bat', ['BAT entry', 'header section'], 'dynamic', (_p, put) => put(BAT_OFFSET, le64(6n))),
  'log entry would overwrite the headers': vd('log', ['header section'], 'dynamic', async (p, put, f) => {
    const header = Buffer.from(f.subarray(0, 4096));
    header.fill(0x66, 8, 4096);
    await vhdxDirtyLog(put, f, (guid) => logEntry({ guid, sequence: 1n, target: 0, data: header, fileLength: (f.length) }));
  }),
  'log entry has an invalid descriptor': vd('log', ['descriptor'], 'dynamic', async (_p, put, f) => {
    await vhdxDirtyLog(put, f, (guid) => logEntry({ guid, sequence: 1n, target: BAT_OFFSET, data: batSectorWith(f, 1, (9n << 20n) | 6n), fileLength: f.length, badDescriptor: true }));
  }),
  'log entry says the file was longer': vd('log', ['truncated'], 'dynamic', async (_p, put, f) => {
    await vhdxDirtyLog(put, f, (guid) => logEntry({ guid, sequence: 1n, target: BAT_OFFSET, data: batSectorWith(f, 0, (8n << 20n) | 6n), fileLength: f.length + 64 * VHDX_MiB }));
  }),
};

export function vpcVhdxDefect(format: 'vpc' | 'vhdx', description: string): Defect {
  const table = format === 'vpc' ? VPC : VHDX;
  const found = table[description];
  if (!found) throw new Error(`no ${format} defect "${description}"; known: ${Object.keys(table).join('; ')}`);
  return found;
}

/** The valid image a defect starts from, made by the real tools so it is the same for every IUT. */
export async function makeBase(format: 'vpc' | 'vhdx', base: Defect['base'], path: string): Promise<void> {
  const opts = format === 'vpc' ? `subformat=${base}` : 'block_size=1M';
  await execa('qemu-img', ['create', '-q', '-f', format, '-o', opts, path, '8M'], { timeout: 60_000, stdin: 'ignore' });
  if (base === 'dynamic') await execa('qemu-io', ['-f', format, '-c', 'write -P 0x11 64k 64k', path], { timeout: 60_000, stdin: 'ignore' });
}

export async function applyDefect(d: Defect, path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const file = await readFile(path);
    await d.apply(path, async (offset, bytes) => { await fh.write(bytes, 0, bytes.length, offset); }, file);
  } finally {
    await fh.close();
  }
}

/** A vhdx whose writer died after logging its next BAT update but before replaying it (reference-made). */
export async function leaveBatUpdateInLog(path: string, offset: number, data: Buffer): Promise<void> {
  const { FileNode } = await import('../../reference/protocols/file.js');
  const { VhdxImage } = await import('../../reference/formats/vhdx/image.js');
  const f = FileNode.open(path, { readOnly: false });
  try {
    const img = await VhdxImage.open(f, { readOnly: false });
    img.crashBeforeReplay = true;
    await img.write(offset, data).catch((e: Error) => {
      if (!/crashed \(test hook\)/.test(e.message)) throw e;
    });
  } finally {
    await f.close();
  }
  await stat(path);
}
