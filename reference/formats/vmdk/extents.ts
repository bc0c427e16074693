/**
 * The extent set of a vmdk disk: the guest disk is the extents one after the
 * other, each a flat file window or a sparse extent. Opening resolves the
 * descriptor's extent file names relative to the descriptor's directory, as
 * QEMU does, but refuses names that leave it (absolute paths, `..`): a
 * descriptor is untrusted input and must not make a reader open (or a writer
 * write) arbitrary host files.
 */
import * as path from 'node:path';
import { BlockError, malformed } from '../../errors.js';
import type { ProtocolNode } from '../../node.js';
import { FileNode } from '../../protocols/file.js';
import { DESC_FILE_MAX, type ExtentLine } from './descriptor.js';
import { COWD, KDMV, SECTOR, SparseExtent, parseKdmv } from './sparse.js';

export interface Extent {
  /** guest byte where the extent starts, and its length */
  start: number;
  length: number;
  file: ProtocolNode;
  /** the name qemu-img info shows for the extent's file */
  filename: string;
  /** the descriptor's extent type (FLAT, SPARSE, VMFS, ...); "" for the image's own sparse extent */
  type: string;
  sparse: SparseExtent | null;
  /** flat: byte offset of the extent's data in its file */
  flatOffset: number;
  /** the extent's file is the image's own file (closed with it) */
  own: boolean;
}

/** The directory part of a name with its slash, as QEMU's bdrv_dirname gives it ("" for a bare name). */
export function dirPrefix(filename: string): string {
  return filename.slice(0, filename.lastIndexOf('/') + 1);
}

/** An extent file name the reference will open: relative, and inside the descriptor's directory. */
export function checkExtentName(name: string): void {
  if (path.isAbsolute(name)) {
    throw new BlockError('unsupported', `extent: the descriptor names the absolute path "${name}"; the reference opens extent files only inside the descriptor's directory`, { field: 'extent', value: name });
  }
  const norm = path.posix.normalize(name);
  if (norm === '..' || norm.startsWith('../') || name.includes('\0')) {
    throw new BlockError('unsupported', `extent: the descriptor names "${name}", outside the descriptor's directory; the reference refuses path traversal`, { field: 'extent', value: name });
  }
}

/** The sparse extent in `file` (KDMV or COWD); `nested` refuses a descriptor inside it. */
export async function openSparseFile(file: ProtocolNode, readOnly: boolean): Promise<SparseExtent> {
  if (file.size() < 4) throw malformed('magic', `${file.filename}: File is too small, not a valid image`);
  const head = Buffer.alloc(512);
  (await file.read(0, Math.min(512, file.size()))).copy(head);
  const magic = head.readUInt32BE(0);
  if (magic === COWD) return SparseExtent.openCowd(file, head);
  if (magic !== KDMV) throw malformed('magic', `${file.filename}: Image not in VMDK format (no KDMV or COWD magic)`);
  const h = parseKdmv(head);
  if (h.capacity === 0 && h.descOffset) {
    throw new BlockError('unsupported', `${file.filename}: a sparse extent listed in a descriptor holds a descriptor of its own; the reference does not nest descriptors`, { field: 'capacity' });
  }
  return SparseExtent.openKdmv(file, head, readOnly);
}

/** Open every extent a descriptor file lists, in order; on failure nothing stays open. */
export async function openListedExtents(descFile: ProtocolNode, lines: ExtentLine[], readOnly: boolean): Promise<Extent[]> {
  const out: Extent[] = [];
  try {
    let start = 0;
    for (const line of lines) {
      if (line.type === 'SESPARSE') throw new BlockError('unsupported', 'extent: seSparse extents are not supported by the reference yet', { field: 'extent', value: 'SESPARSE' });
      checkExtentName(line.file);
      if (descFile.driver !== 'file') {
        throw new BlockError('unsupported', `extent: Cannot use relative paths with VMDK descriptor file '${descFile.filename}' (not a host file)`, { field: 'extent' });
      }
      const name = dirPrefix(descFile.filename) + line.file;
      const file = FileNode.open(name, { readOnly });
      try {
        if (line.type === 'FLAT' || line.type === 'VMFS') {
          const length = line.sectors * SECTOR;
          out.push({ start, length, file, filename: name, type: line.type, sparse: null, flatOffset: line.flatOffset * SECTOR, own: false });
          start += length;
        } else {
          const sparse = await openSparseFile(file, readOnly);
          const length = sparse.sectors * SECTOR;
          out.push({ start, length, file, filename: name, type: line.type, sparse, flatOffset: 0, own: false });
          start += length;
        }
      } catch (e) {
        if (!out.some((x) => x.file === file)) await file.close();
        throw e;
      }
      if (start > Number.MAX_SAFE_INTEGER / 2) throw malformed('extent', 'the extents add up to more than any disk');
    }
  } catch (e) {
    for (const x of out) await x.file.close().catch(() => undefined);
    throw e;
  }
  return out;
}

/** The descriptor text of a descriptor file (bounded as QEMU bounds it). */
export async function readDescriptorFile(file: ProtocolNode): Promise<Buffer> {
  const n = Math.min(file.size(), DESC_FILE_MAX);
  return file.read(0, n);
}
