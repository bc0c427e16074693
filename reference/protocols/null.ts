/**
 * null-co / null-aio: a device of a given size that stores nothing. Writes
 * succeed and are dropped; reads return zeroes (QEMU leaves the buffer as it is
 * unless read-zeroes=on; zeroes are one of the contents it may have). Block
 * status says "zero" everywhere, as QEMU's null driver does with read-zeroes.
 */
import { BlockError } from '../errors.js';
import { checkRange, type BlockStatus, type ProtocolNode } from '../node.js';

export class NullNode implements ProtocolNode {
  readonly filename: string;
  private closed = false;

  constructor(
    readonly driver: 'null-co' | 'null-aio',
    private readonly length: number,
    readonly readOnly: boolean,
  ) {
    this.filename = `${driver}://`;
  }

  size(): number {
    return this.length;
  }

  private alive(): void {
    if (this.closed) throw new BlockError('io', `${this.driver}: node is closed`);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.alive();
    checkRange(this, offset, length);
    return Buffer.alloc(length);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.alive();
    if (this.readOnly) throw new BlockError('read-only', `${this.driver}: opened read-only`);
    checkRange(this, offset, data.length);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    return this.write(offset, Buffer.alloc(0)).then(() => checkRange(this, offset, length));
  }

  async discard(offset: number, length: number): Promise<void> {
    return this.writeZeroes(offset, length);
  }

  async flush(): Promise<void> {
    this.alive();
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    this.alive();
    const len = Math.max(0, Math.min(length, this.length - offset));
    return { offset, length: len, data: false, zero: true, present: true, depth: 0, hostOffset: offset };
  }

  async truncate(size: number): Promise<void> {
    if (size !== this.length) throw new BlockError('unsupported', `${this.driver}: Cannot resize a null device`, { option: 'size' });
  }

  async allocatedSize(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
