/**
 * What the read-only formats (bochs, cloop, dmg) share: QEMU 7.2 opens them
 * only read-only ("Image is read-only" for a read-write open) and cannot
 * create them, and none has a block-status callback, so qemu-img map shows
 * the whole disk as one data extent with no host offset.
 */
import { BlockError } from '../errors.js';
import type { BlockStatus } from '../node.js';

export function refuseReadWrite(format: string, readOnly: boolean): void {
  if (!readOnly) {
    throw new BlockError('read-only', `Image is read-only: the ${format} format can only be opened read-only (QEMU has no ${format} writer)`, { option: 'format', value: format });
  }
}

export function refuseWrite(format: string): never {
  throw new BlockError('read-only', `Image is read-only: ${format} images cannot be written`, { option: 'format', value: format });
}

export function refuseCreate(format: string): never {
  throw new BlockError('unsupported', `Format driver '${format}' does not support image creation`, { option: 'format', value: format });
}

/** One data extent from `offset` to the end, as QEMU's generic block status reports it. */
export function wholeDataStatus(size: number, offset: number, length: number): BlockStatus {
  return { offset, length: Math.max(0, Math.min(length, size - offset)), data: true, zero: false, present: true, depth: 0 };
}
