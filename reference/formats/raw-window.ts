/**
 * raw's offset and size options: the guest disk is a window of the file,
 * starting `offset` bytes in and `size` long (the rest of the file without a
 * size). The window is a protocol node in front of the file, so the raw
 * format itself stays a byte-for-byte pass-through. Checks and messages are
 * QEMU 7.2's (raw_read_options / raw_apply_options).
 */
import { BlockError } from '../errors.js';
import { checkRange, type BlockStatus, type ProtocolNode } from '../node.js';

export class RawWindow implements ProtocolNode {
  readonly driver: string;
  readonly filename: string;
  readonly readOnly: boolean;
  private readonly length: number;

  constructor(
    readonly inner: ProtocolNode,
    private readonly offset: number,
    size: number | undefined,
  ) {
    this.driver = inner.driver;
    this.filename = inner.filename;
    this.readOnly = inner.readOnly;
    const real = inner.size();
    if (offset > real) {
      throw new BlockError('invalid-option', `Offset (${offset}) cannot be greater than size of the containing file (${real})`, { option: 'offset', value: offset });
    }
    if (size !== undefined) {
      if (size % 512 !== 0) throw new BlockError('invalid-option', 'Specified size is not multiple of 512', { option: 'size', value: size });
      if (offset + size > real) {
        throw new BlockError('invalid-option', `The sum of offset (${offset}) and size (${size}) has to be smaller or equal to the  actual size of the containing file (${real})`, { option: 'size', value: size });
      }
    }
    this.length = size ?? real - offset;
  }

  size(): number {
    return this.length;
  }
  read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return this.inner.read(this.offset + offset, length);
  }
  write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    return this.inner.write(this.offset + offset, data);
  }
  writeZeroes(offset: number, length: number, opts?: { unmap?: boolean }): Promise<void> {
    checkRange(this, offset, length);
    return this.inner.writeZeroes(this.offset + offset, length, opts);
  }
  discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    return this.inner.discard(this.offset + offset, length);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const s = await this.inner.blockStatus(this.offset + offset, Math.min(length, this.length - offset));
    return { ...s, offset, hostOffset: s.hostOffset === undefined ? undefined : s.hostOffset };
  }
  async truncate(): Promise<void> {
    throw new BlockError('unsupported', 'Cannot resize a raw image with offset or size options', { option: 'size' });
  }
  allocatedSize(): Promise<number> {
    return this.inner.allocatedSize();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
