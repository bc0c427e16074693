import { BlockError } from './errors.js';

/**
 * The one interface every driver of the reference exposes, format or protocol,
 * as QEMU's BlockDriverState graph does: a format reads and writes through its
 * `file` child, so every format works over every protocol.
 *
 * Offsets and lengths are byte counts held in JS numbers (exact to 2^53, i.e.
 * 8 PiB, beyond anything qemu-img can create).
 */

/** One extent of block status, the way qemu-img map describes it. */
export interface BlockStatus {
  /** Guest offset where the extent starts. */
  offset: number;
  length: number;
  /** The extent reads as data stored somewhere in the chain. */
  data: boolean;
  /** The extent reads as zeroes. */
  zero: boolean;
  /** Allocated in this node (as opposed to unallocated and coming from a backing node). */
  present: boolean;
  /** How many backing hops down the data comes from (0 = this node). */
  depth: number;
  /** Where the data lives in the node's file, when it is stored uncompressed. */
  hostOffset?: number;
  /** Compressed data (no host offset to report). */
  compressed?: boolean;
}

export interface BlockNode {
  /** Driver name as qemu-img prints it ("qcow2", "raw", "file"). */
  readonly driver: string;
  /** The filename the node was opened with. */
  readonly filename: string;
  readonly readOnly: boolean;
  /** Virtual (guest) size in bytes. */
  size(): number;
  read(offset: number, length: number): Promise<Buffer>;
  /** Optional fast path: read straight into a caller's buffer (no intermediate copy). */
  readInto?(target: Buffer, at: number, offset: number, length: number): Promise<void>;
  write(offset: number, data: Buffer): Promise<void>;
  /** Make the range read as zeroes; `unmap` allows freeing the space. */
  writeZeroes(offset: number, length: number, opts?: { unmap?: boolean }): Promise<void>;
  /** Guest says the range is unused; afterwards it reads as zeroes or as the backing file. */
  discard(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
  /** Status of the extent that starts at `offset` (at most `length` bytes long). */
  blockStatus(offset: number, length: number): Promise<BlockStatus>;
  close(): Promise<void>;
}

/** A protocol node additionally exposes host-file operations formats need. */
export interface ProtocolNode extends BlockNode {
  truncate(size: number, prealloc?: 'off' | 'falloc' | 'full'): Promise<void>;
  /** Bytes the host actually allocates for the file (du). */
  allocatedSize(): Promise<number>;
}

/** Guest I/O must stay within the virtual disk. */
export function checkRange(node: { size(): number; driver: string }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new BlockError('out-of-range', `${node.driver}: invalid request offset=${offset} length=${length}`, { offset });
  }
  if (offset + length > node.size()) {
    throw new BlockError('out-of-range', `${node.driver}: request ${offset}+${length} beyond the virtual size ${node.size()}`, { offset });
  }
}

/**
 * What an image format node adds to BlockNode, all optional, so the tools
 * (info, check, map, open's backing chain) work for every format without
 * knowing it: a format fills in what qemu-img reports for it.
 */
export interface ImageNode extends BlockNode {
  /** the backing file name as stored in the image, and its format if stored */
  backingFile?: string;
  backingFormat?: string;
  /** the opened backing node, set by graph/open */
  backing?: BlockNode | null;
  /** qemu-img info's cluster-size, where the format has clusters */
  clusterSize?: number;
  /** qemu-img info's "encrypted": true for an encrypted image */
  encrypted?: boolean;
  /** qemu-img info's dirty-flag */
  dirty?: boolean;
  /** qemu-img info's format-specific {type, data} */
  formatSpecific?(): { type: string; data: Record<string, unknown> } | undefined;
  /** qemu-img resize (size in bytes, a multiple of 512); absent means the format cannot be resized */
  resize?(size: number, opts: { shrink?: boolean; preallocation?: 'off' | 'metadata' | 'falloc' | 'full' }): Promise<void>;
  /** Die without closing (a crashed writer): release the file, write back nothing more. */
  abandon?(): Promise<void>;
  /** qemu-img check for this format; absent means qemu-img exits 63 ("does not support checks") */
  check?(opts: { repair?: 'leaks' | 'all'; log?: (line: string) => void }): Promise<import('../adapters/adapter.js').CheckResult>;
}

export function asImage(node: BlockNode): ImageNode {
  return node as ImageNode;
}

/**
 * Zeroes by writing them, for formats with no way to mark a range zero (vdi,
 * parallels, qcow v1): what QEMU's generic fallback does. Writes in 1 MiB
 * pieces so memory stays bounded whatever the length.
 */
export async function writeZeroesByWriting(node: BlockNode, offset: number, length: number): Promise<void> {
  checkRange(node, offset, length);
  const chunk = Buffer.alloc(Math.min(length, 1 << 20));
  for (let pos = 0; pos < length; pos += chunk.length) {
    await node.write(offset + pos, chunk.subarray(0, Math.min(chunk.length, length - pos)));
  }
}
