/**
 * The native helpers (native/hostfile.c, built by `npm install` through
 * node-gyp): SEEK_DATA/SEEK_HOLE, fallocate, OFD byte-range locks and
 * BLKGETSIZE64 on a file descriptor.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

interface HostFileAddon {
  /** next data (wantData=1) or hole (0) at or after offset; -1 if none */
  seek(fd: number, offset: number, wantData: number): number;
  /** mode 0 allocate, 1 punch hole (keep size), 2 zero range */
  fallocate(fd: number, mode: number, offset: number, length: number): number;
  /** OFD lock of [start, start+length): type 0 unlock, 1 shared, 2 exclusive; -1 when another holder clashes */
  ofdLock(fd: number, start: number, length: number, type: number): number;
  /** would a lock of type (1 shared, 2 exclusive) be granted? 0 if so, else the clashing holder's type */
  ofdTest(fd: number, start: number, length: number, type: number): number;
  /** size in bytes of a block device (BLKGETSIZE64) */
  blockDeviceSize(fd: number): number;
  /** CD-ROM drive status (4: a disc is in); -1 when the device is no CD-ROM drive */
  cdromStatus(fd: number): number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/reference/protocols -> repository root
const root = path.resolve(here, '..', '..', '..');

function load(): HostFileAddon {
  const require = createRequire(import.meta.url);
  try {
    return require(path.join(root, 'build', 'Release', 'hostfile.node')) as HostFileAddon;
  } catch (e) {
    throw new Error(`the native helper build/Release/hostfile.node is missing or broken; run \`npm install\` (it builds it with node-gyp): ${(e as Error).message}`);
  }
}

export const hostfile: HostFileAddon = load();
export const FALLOC_ALLOCATE = 0;
export const FALLOC_PUNCH_HOLE = 1;
export const FALLOC_ZERO_RANGE = 2;
