/**
 * Host files and devices: a plain path, or one with the driver's own prefix
 * (file:PATH, host_device:PATH, host_cdrom:PATH), which is stripped. A path
 * that, stripped, would look like a protocol ("file:a:b") becomes "./a:b", as
 * QEMU does, so it cannot be taken for one later.
 */
import { pathHasProtocol } from './protocol-name.js';
import type { FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

function hostSyntax(driver: 'file' | 'host_device' | 'host_cdrom'): FilenameSyntax {
  const prefix = `${driver}:`;
  return {
    driver,
    prefixes: [driver],
    keepsFilename: true,
    strong: [],
    parse(filename): QDict {
      if (!filename.startsWith(prefix)) return {};
      const rest = filename.slice(prefix.length);
      return { filename: pathHasProtocol(rest) ? `./${rest}` : rest };
    },
  };
}

export const fileSyntax = hostSyntax('file');
export const hostDeviceSyntax = hostSyntax('host_device');
export const hostCdromSyntax = hostSyntax('host_cdrom');
