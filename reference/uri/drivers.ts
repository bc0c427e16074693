/**
 * The block drivers QEMU 7.2 knows by name (bdrv_find_format), whether each is
 * a protocol (opens a host resource) or a format (reads through a `file`
 * child), its filename syntax where it has one, and its strong options. One
 * line per driver. A name here is a driver QEMU has; whether the reference can
 * open it is the open path's business.
 */
import type { FilenameSyntax } from './syntax.js';
import { nbdSyntax } from './nbd.js';
import { iscsiSyntax } from './iscsi.js';
import { glusterSyntax } from './gluster.js';
import { sshSyntax } from './ssh.js';
import { nvmeSyntax } from './nvme.js';
import { sheepdogSyntax } from './sheepdog.js';
import { fatSyntax } from './fat.js';
import { nullAioSyntax, nullCoSyntax } from './null.js';
import { fileSyntax, hostCdromSyntax, hostDeviceSyntax } from './file.js';

export interface DriverEntry {
  readonly name: string;
  readonly protocol: boolean;
  /** formats with a backing file take a `backing` child */
  readonly backing?: boolean;
  readonly syntax?: FilenameSyntax;
  /** strong options of formats (protocols have them in their syntax) */
  readonly strong?: readonly string[];
  /** removed from QEMU: the version that dropped it (the reference still parses its filenames) */
  readonly removedIn?: string;
}

const entries: DriverEntry[] = [
  { name: 'file', protocol: true, syntax: fileSyntax },
  { name: 'host_device', protocol: true, syntax: hostDeviceSyntax },
  { name: 'host_cdrom', protocol: true, syntax: hostCdromSyntax },
  { name: 'nbd', protocol: true, syntax: nbdSyntax },
  { name: 'iscsi', protocol: true, syntax: iscsiSyntax },
  { name: 'gluster', protocol: true, syntax: glusterSyntax },
  { name: 'ssh', protocol: true, syntax: sshSyntax },
  { name: 'nvme', protocol: true, syntax: nvmeSyntax },
  { name: 'vvfat', protocol: true, syntax: fatSyntax },
  { name: 'null-co', protocol: true, syntax: nullCoSyntax },
  { name: 'null-aio', protocol: true, syntax: nullAioSyntax },
  { name: 'sheepdog', protocol: true, syntax: sheepdogSyntax, removedIn: '6.0' },
  // protocols QEMU 7.2 has whose grammar this suite does not cover: their filename stays as given
  { name: 'http', protocol: true }, { name: 'https', protocol: true }, { name: 'ftp', protocol: true }, { name: 'ftps', protocol: true },
  { name: 'nfs', protocol: true }, { name: 'rbd', protocol: true }, { name: 'blkdebug', protocol: true }, { name: 'blkverify', protocol: true },
  { name: 'raw', protocol: false, strong: ['offset', 'size'] },
  { name: 'qcow2', protocol: false, backing: true },
  { name: 'qcow', protocol: false, backing: true },
  { name: 'qed', protocol: false, backing: true },
  { name: 'vmdk', protocol: false, backing: true },
  { name: 'vdi', protocol: false },
  { name: 'vpc', protocol: false },
  { name: 'vhdx', protocol: false },
  { name: 'parallels', protocol: false },
  { name: 'luks', protocol: false },
  { name: 'bochs', protocol: false },
  { name: 'cloop', protocol: false },
  { name: 'dmg', protocol: false },
  // (one line per driver, above this comment)
];

export const drivers: ReadonlyMap<string, DriverEntry> = new Map(entries.map((e) => [e.name, e]));

/** protocol name (before ':') -> driver, for the drivers that have a filename syntax (bdrv_find_protocol) */
export const protocolPrefixes: ReadonlyMap<string, DriverEntry> = new Map(
  entries.flatMap((e) => (e.syntax ? e.syntax.prefixes.map((p) => [p, e] as [string, DriverEntry]) : e.protocol && !e.syntax ? [[e.name, e] as [string, DriverEntry]] : [])),
);

export function strongOptions(d: DriverEntry): readonly string[] {
  return d.syntax?.strong ?? d.strong ?? [];
}
