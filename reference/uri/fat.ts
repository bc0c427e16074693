/**
 * Virtual FAT directories: fat:[floppy:][rw:][12:|16:|32:]DIRECTORY, in any
 * order (block/vvfat.c in 7.2 looks for ":32:", ":16:", ":12:", ":floppy:",
 * ":rw:" anywhere and takes the directory after the last ':', keeping a DOS
 * drive letter "C:" with it). fat-type 0 means "pick": FAT12 for floppies,
 * FAT16 for disks. The label is an option only (label=..., at most 11 bytes).
 * qemu-img shows json:{...} for these nodes: there is no name that says it all.
 */
import { syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

export const fatSyntax: FilenameSyntax = {
  driver: 'vvfat',
  prefixes: ['fat'],
  strong: ['dir', 'fat-type', 'floppy', 'label', 'rw'],
  parse(filename) {
    if (!filename.startsWith('fat:')) throw syntaxError("File name string must start with 'fat:'", 'filename', filename);
    let fatType = 0;
    if (filename.includes(':32:')) fatType = 32;
    else if (filename.includes(':16:')) fatType = 16;
    else if (filename.includes(':12:')) fatType = 12;
    const floppy = filename.includes(':floppy:');
    const rw = filename.includes(':rw:');
    const i = filename.lastIndexOf(':');
    const dir = filename[i - 2] === ':' && /[A-Za-z]/.test(filename[i - 1] ?? '') ? filename.slice(i - 1) : filename.slice(i + 1);
    const out: QDict = { dir, 'fat-type': fatType, floppy, rw };
    return out;
  },
};
