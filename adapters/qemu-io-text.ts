/**
 * The qemu-io `-c` text for one I/O command. One translation serves the qemu adapter and
 * the corpus generator, so a golden image's recipe and a scenario's write mean the same.
 */
import type { IoCommand } from './adapter.js';

function hexByte(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`pattern ${n} is not a byte`);
  return `0x${n.toString(16).padStart(2, '0')}`;
}

export function qemuIoText(c: IoCommand): string {
  switch (c.op) {
    case 'write':
      return `write -P ${hexByte(c.pattern)} ${c.offset} ${c.length}`;
    case 'write-file':
      return `write -s ${c.file} ${c.offset} ${c.length}`;
    case 'zero':
      return `write -z${c.unmap ? ' -u' : ''} ${c.offset} ${c.length}`;
    case 'discard':
      return `discard ${c.offset} ${c.length}`;
    case 'read':
      // a negative pattern reads without checking the bytes
      return c.pattern < 0 ? `read ${c.offset} ${c.length}` : `read -P ${hexByte(c.pattern)} ${c.offset} ${c.length}`;
    case 'crash':
      return 'abort';
  }
}
