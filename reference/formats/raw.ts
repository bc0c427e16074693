/**
 * raw: the guest disk is the file, byte for byte. Its only create option is
 * preallocation (off, falloc, full).
 */
import { checkRange, type BlockNode, type BlockStatus, type ProtocolNode } from '../node.js';
import { BlockError } from '../errors.js';
import type { FormatDriver } from './driver.js';

export class RawImage implements BlockNode {
  readonly driver = 'raw';
  /** qemu-img info shows dirty-flag false for raw over a host file; over NBD (no block-driver info) not at all */
  readonly dirty: boolean | undefined;
  constructor(readonly file: ProtocolNode) {
    this.dirty = file.driver === 'file' ? false : undefined;
  }
  get filename(): string { return this.file.filename; }
  get readOnly(): boolean { return this.file.readOnly; }
  size(): number { return this.file.size(); }
  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return this.file.read(offset, length);
  }
  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    return this.file.write(offset, data);
  }
  async writeZeroes(offset: number, length: number, opts?: { unmap?: boolean }): Promise<void> {
    checkRange(this, offset, length);
    return this.file.writeZeroes(offset, length, opts);
  }
  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    return this.file.discard(offset, length);
  }
  /** qemu-img resize: the file is the disk; shrinking needs --shrink, growth may be preallocated. */
  async resize(newSize: number, opts: { shrink?: boolean; preallocation?: string } = {}): Promise<void> {
    if (newSize < this.size() && !opts.shrink) {
      throw new BlockError('invalid-size', 'Use the --shrink option to perform a shrink operation.', { option: 'shrink' });
    }
    const p = opts.preallocation ?? 'off';
    if (p !== 'off' && p !== 'falloc' && p !== 'full') {
      throw new BlockError('invalid-option', `preallocation: '${p}' is invalid for raw; allowed: off, falloc, full`, { option: 'preallocation' });
    }
    await this.file.truncate(newSize, p);
  }
  flush(): Promise<void> { return this.file.flush(); }
  blockStatus(offset: number, length: number): Promise<BlockStatus> { return this.file.blockStatus(offset, length); }
  close(): Promise<void> { return this.file.close(); }
}

export const rawDriver: FormatDriver = {
  name: 'raw',
  // raw matches anything, weakly: it is what probing falls back to.
  probe: () => 1,
  async create(file, opts) {
    const size = opts.size as number;
    const prealloc = (opts.preallocation as 'off' | 'falloc' | 'full' | undefined) ?? 'off';
    await file.truncate(size, prealloc);
  },
  async open(file) {
    return new RawImage(file);
  },
  createOptionKeys: ['size', 'preallocation', 'extent_size_hint', 'nocow'],
};

export function assertRaw(node: BlockNode): RawImage {
  if (!(node instanceof RawImage)) throw new BlockError('unsupported', `${node.driver} is not raw`);
  return node;
}
