/**
 * The vmdk text descriptor: the "# Disk DescriptorFile" that names the disk's
 * content id (CID), its parent's (parentCID), its createType, the base image
 * (parentFileNameHint) and one line per extent, then the disk database (ddb.*).
 *
 * A descriptor either is a file of its own (monolithicFlat, twoGbMaxExtent*,
 * vmfs) or sits inside a sparse extent (monolithicSparse, streamOptimized),
 * 512 bytes in. Parsing follows QEMU 7.2's lenient rules (the first "CID" in
 * the text, the createType between the quotes after `createType=`, extent lines
 * that do not parse as RW lines are skipped), plus the bounds a reader of
 * hostile images needs: a cap on the number of extents.
 */
import { BlockError, malformed } from '../../errors.js';

/** QEMU reads and rewrites this much descriptor text at most (DESC_SIZE, 20 sectors). */
export const DESC_SIZE = 20 * 512;
/** QEMU reads a descriptor file up to 1 MiB - 1 (no unbounded allocation). */
export const DESC_FILE_MAX = (1 << 20) - 1;
/** The reference opens at most this many extents (a 2 TiB twoGbMaxExtent disk has 1024). */
export const MAX_EXTENTS = 4096;

export type ExtentType = 'FLAT' | 'SPARSE' | 'VMFS' | 'VMFSSPARSE' | 'SESPARSE';

export interface ExtentLine {
  sectors: number;
  type: ExtentType;
  /** the file name exactly as the descriptor gives it */
  file: string;
  /** FLAT: where the extent's data starts in its file, in sectors */
  flatOffset: number;
}

export interface Descriptor {
  createType: string;
  cid: number;
  parentCid: number;
  parentFileNameHint?: string;
  extents: ExtentLine[];
}

/** Create types a descriptor file may have (monolithicSparse/streamOptimized live inside their extent). */
export const DESCRIPTOR_FILE_TYPES = ['monolithicFlat', 'vmfs', 'vmfsSparse', 'seSparse', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'];

/** The text up to its first NUL (the descriptor area is zero padded). */
export function descriptorText(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul < 0 ? buf.length : nul);
}

/** A hex number after `name=` where `name` first occurs, as QEMU's sscanf("%x") reads it. */
function hexAfter(text: string, name: string): number | undefined {
  const at = text.indexOf(name);
  if (at < 0) return undefined;
  const m = /^\s*([0-9a-fA-F]+)/.exec(text.slice(at + name.length + 1, at + name.length + 40));
  if (!m) return undefined;
  // %x takes as many digits as there are and keeps the low 32 bits
  return Number(BigInt(`0x${m[1]}`) & 0xffffffffn);
}

/** The CIDs only (what a base's CID check needs). */
export function parseCids(text: string): { cid: number; parentCid: number } {
  const cid = hexAfter(text, 'CID');
  if (cid === undefined) throw malformed('CID', 'the vmdk descriptor has no CID line (CID=<hex>)');
  const parentCid = hexAfter(text, 'parentCID');
  if (parentCid === undefined) throw malformed('parentCID', 'the vmdk descriptor has no parentCID line (parentCID=<hex>)');
  return { cid, parentCid };
}

/** The value between the quotes of `name="..."`, as QEMU's vmdk_parse_description finds it. */
function quoted(text: string, name: string): string | undefined {
  const at = text.indexOf(name);
  if (at < 0) return undefined;
  const start = at + name.length + 2;
  if (start >= text.length) return undefined;
  const end = text.indexOf('"', start);
  if (end < 0) return undefined;
  return text.slice(start, end);
}

const EXTENT_LINE = /^[ \t]*(\S{1,10})[ \t]+([+-]?\d+)[ \t]+(\S{1,10})[ \t]+"([^\n\r"]{1,511})"(?:[ \t]+([+-]?\d+))?/;

/** The extent lines, with QEMU's rules for which lines count and which are invalid. */
export function parseExtentLines(text: string): ExtentLine[] {
  const out: ExtentLine[] = [];
  for (const line of text.split('\n')) {
    const m = EXTENT_LINE.exec(line);
    if (!m || m[1] !== 'RW') continue;
    const sectors = Number(m[2]);
    const type = m[3];
    const hasOffset = m[5] !== undefined;
    if (type === 'FLAT') {
      if (!hasOffset || Number(m[5]) < 0) throw malformed('extent', `Invalid extent line: ${line.replace(/\r$/, '')}`);
    } else if (hasOffset) {
      throw malformed('extent', `Invalid extent line: ${line.replace(/\r$/, '')}`);
    }
    if (!(sectors > 0) || !['FLAT', 'SPARSE', 'VMFS', 'VMFSSPARSE', 'SESPARSE'].includes(type)) continue;
    if (!Number.isSafeInteger(sectors) || sectors > 2 ** 53 / 512) throw malformed('extent', `extent of ${m[2]} sectors is larger than any disk`);
    out.push({ sectors, type: type as ExtentType, file: m[4], flatOffset: hasOffset ? Number(m[5]) : 0 });
    if (out.length > MAX_EXTENTS) {
      throw new BlockError('unsupported', `extent: the vmdk descriptor lists more than ${MAX_EXTENTS} extents (the reference opens at most ${MAX_EXTENTS})`, { field: 'extent' });
    }
  }
  return out;
}

export function parseDescriptor(text: string): Descriptor {
  const createType = quoted(text, 'createType');
  if (createType === undefined) throw malformed('createType', 'invalid VMDK image descriptor (no createType="...")');
  const { cid, parentCid } = parseCids(text);
  const d: Descriptor = { createType, cid, parentCid, extents: [] };
  const hintAt = text.indexOf('parentFileNameHint');
  if (hintAt >= 0) {
    const start = hintAt + 'parentFileNameHint'.length + 2;
    const end = text.indexOf('"', start);
    if (end < 0) throw malformed('parentFileNameHint', 'the parentFileNameHint value has no closing quote');
    if (end - start > 4095) throw malformed('parentFileNameHint', `the parent file name is ${end - start} bytes, more than 4095`);
    d.parentFileNameHint = text.slice(start, end);
  }
  return d;
}

/**
 * A descriptor as QEMU 7.2 writes it at creation (vmdk_co_do_create's
 * template). Geometry: 63 sectors per track, 16 heads for ide and 255 for the
 * other adapters, cylinders = size / (63 * heads * 512) rounded down.
 */
export function buildDescriptor(o: {
  cid: number; parentCid: number; createType: string; parentFileNameHint?: string;
  extentLines: string[]; hwVersion: string; size: number; adapterType: string; toolsVersion: string;
}): string {
  const heads = o.adapterType === 'ide' ? 16 : 255;
  const cylinders = Math.floor(o.size / (63 * heads * 512));
  return '# Disk DescriptorFile\n' +
    'version=1\n' +
    `CID=${o.cid.toString(16)}\n` +
    `parentCID=${o.parentCid.toString(16)}\n` +
    `createType="${o.createType}"\n` +
    (o.parentFileNameHint !== undefined ? `parentFileNameHint="${o.parentFileNameHint}"` : '') +
    '\n' +
    '# Extent description\n' +
    o.extentLines.join('') +
    '\n' +
    '# The Disk Data Base\n' +
    '#DDB\n' +
    '\n' +
    `ddb.virtualHWVersion = "${o.hwVersion}"\n` +
    `ddb.geometry.cylinders = "${cylinders}"\n` +
    `ddb.geometry.heads = "${heads}"\n` +
    'ddb.geometry.sectors = "63"\n' +
    `ddb.adapterType = "${o.adapterType}"\n` +
    `ddb.toolsVersion = "${o.toolsVersion}"\n`;
}

/**
 * The descriptor with a new CID, as QEMU's vmdk_write_cid edits it in place:
 * the text up to the first "CID=" stays, the new CID and a newline follow, then
 * everything from "parentCID" on. Bytes past the new text's NUL keep what the
 * old buffer had there (QEMU writes the whole buffer back).
 */
export function withNewCid(old: Buffer, cid: number): Buffer {
  const text = descriptorText(old);
  const p = text.indexOf('parentCID');
  if (p < 0) throw malformed('parentCID', 'the vmdk descriptor has no parentCID line; its CID cannot be updated');
  const c = text.indexOf('CID');
  const next = text.slice(0, c + 4) + `${cid.toString(16)}\n` + text.slice(p);
  const out = Buffer.from(old);
  const n = Math.min(out.length - 1, Buffer.byteLength(next, 'latin1'));
  out.write(next, 0, n, 'latin1');
  out[n] = 0;
  return out;
}
