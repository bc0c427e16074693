/** Where the FAT volume of a raw disk image starts: what mtools (`-i IMAGE@@OFFSET`) and fsck.fat need told. */
import * as fs from 'node:fs';

/** The byte offset of the FAT volume in a raw disk image: the first MBR partition, or 0 for a floppy (no MBR). */
export function volumeOffset(image: string): number {
  const fd = fs.openSync(image, 'r');
  try {
    const b = Buffer.alloc(512);
    fs.readSync(fd, b, 0, 512, 0);
    // a boot sector starts with a jump (0xeb/0xe9); an MBR here has an active first partition
    const hasMbr = b[510] === 0x55 && b[511] === 0xaa && b[0] !== 0xeb && b[0] !== 0xe9 && b[0x1be] === 0x80;
    return hasMbr ? b.readUInt32LE(0x1c6) * 512 : 0;
  } finally {
    fs.closeSync(fd);
  }
}
