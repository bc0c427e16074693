/**
 * nvme://PCI-ADDRESS/NAMESPACE (block/nvme.c in 7.2): the controller's PCI
 * address as the device option, the namespace (numbered from 1; "1" when the
 * part after '/' is empty, absent without a '/'). Opening needs the controller
 * bound to vfio-pci; without VFIO the open fails as QEMU's does.
 */
import { str, syntaxError, type FilenameSyntax } from './syntax.js';
import type { QDict } from '../options/qdict.js';

export const nvmeSyntax: FilenameSyntax = {
  driver: 'nvme',
  prefixes: ['nvme'],
  strong: ['device', 'namespace'],
  parse(filename) {
    const out: QDict = {};
    const pref = 'nvme://';
    // like 7.2, anything not longer than "nvme://" sets nothing ("'device' option is required" follows)
    if (!(filename.length > pref.length && filename.startsWith(pref))) return out;
    const tmp = filename.slice(pref.length);
    const slash = tmp.indexOf('/');
    if (slash < 0) {
      out.device = tmp;
      return out;
    }
    out.device = tmp.slice(0, slash);
    const ns = tmp.slice(slash + 1);
    if (ns && !/^[0-9]+$/.test(ns)) throw syntaxError(`Invalid namespace '${ns}', positive number expected`, 'namespace', ns);
    if (ns && (Number(ns) === 0 || Number(ns) > 0xffffffff)) throw syntaxError(`Invalid namespace '${ns}', positive number expected (namespaces are numbered from 1)`, 'namespace', ns);
    out.namespace = ns || '1';
    return out;
  },
  refresh(own) {
    const device = str(own.device);
    if (device === undefined) return '';
    return `nvme://${device}/${String(own.namespace ?? 1)}`;
  },
};

/** A PCI address as QEMU's VFIO code wants it: [DOMAIN:]BUS:SLOT.FUNCTION in hex. */
export function isPciAddress(s: string): boolean {
  return /^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$/.test(s);
}
