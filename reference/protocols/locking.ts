/**
 * Image locking as QEMU's file-posix does it, so that the reference and QEMU
 * see each other's opens.
 *
 * A node that uses an image holds some permissions on it and refuses to share
 * some with other users. QEMU records both on the image file itself with OFD
 * byte-range locks, always shared (read) locks, one byte per permission:
 * byte 100+N is locked while permission N is held, byte 200+N while it is not
 * shared. An opener first takes its own bytes, then tests (as if it wanted an
 * exclusive lock) the bytes that would clash: 200+N of every permission it
 * wants (someone refuses to share it) and 100+N of every permission it refuses
 * to share (someone holds it). Locks of one open file description never clash
 * with each other, and they go away when the descriptor is closed, so a
 * process that dies releases its image.
 */
import { BlockError } from '../errors.js';
import { hostfile } from './hostfile.js';

/** BlockPermission bits of QEMU 7.2, in the order of their lock bytes. */
export const PERM_CONSISTENT_READ = 1 << 0;
export const PERM_WRITE = 1 << 1;
export const PERM_WRITE_UNCHANGED = 1 << 2;
export const PERM_RESIZE = 1 << 3;
export const PERM_ALL = 0xf;

/** The words QEMU's messages use for each permission. */
const PERM_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'];

export const LOCK_PERM_BASE = 100;
export const LOCK_SHARED_BASE = 200;

const UNLOCK = 0;
const SHARED = 1;
const EXCLUSIVE = 2;

export type LockingMode = 'on' | 'off' | 'auto';

/** The permissions a user takes (perm) and leaves to others (shared). */
export interface Permissions {
  perm: number;
  shared: number;
}

export function permissionNames(bits: number): string[] {
  return PERM_NAMES.filter((_, i) => bits & (1 << i));
}

/**
 * The lock bytes of one descriptor. `set` moves from the current state to the
 * new one, or leaves the current state untouched and throws a 'locked'
 * BlockError worded as QEMU words it.
 */
export class ImageLock {
  private held = 0;
  private unshared = 0;

  constructor(private readonly fd: number, private readonly filename: string) {}

  set(p: Permissions): void {
    const wantHeld = p.perm & PERM_ALL;
    const wantUnshared = ~p.shared & PERM_ALL;
    const before = { held: this.held, unshared: this.unshared };
    // Take the union first, so there is no moment without our old bytes.
    this.apply(this.held | wantHeld, this.unshared | wantUnshared);
    const clash = this.clash(wantHeld, wantUnshared);
    if (clash) {
      this.apply(before.held, before.unshared, true);
      throw new BlockError('locked', `${clash}\nIs another process using the image [${this.filename}]?`, { option: 'locking' });
    }
    this.apply(wantHeld, wantUnshared, true);
  }

  /** Which permissions this descriptor holds and refuses to share now. */
  state(): Permissions {
    return { perm: this.held, shared: ~this.unshared & PERM_ALL };
  }

  private apply(held: number, unshared: number, unlockRest = false): void {
    for (let i = 0; i < PERM_NAMES.length; i++) {
      const bit = 1 << i;
      this.setByte(LOCK_PERM_BASE + i, (held & bit) !== 0, (this.held & bit) !== 0, unlockRest);
      this.setByte(LOCK_SHARED_BASE + i, (unshared & bit) !== 0, (this.unshared & bit) !== 0, unlockRest);
    }
    if (unlockRest) {
      this.held = held;
      this.unshared = unshared;
    } else {
      this.held |= held;
      this.unshared |= unshared;
    }
  }

  private setByte(offset: number, want: boolean, have: boolean, unlockRest: boolean): void {
    if (want && !have) {
      // Everybody takes shared locks, so this can only fail for host reasons.
      if (hostfile.ofdLock(this.fd, offset, 1, SHARED) !== 0) {
        throw new BlockError('locked', `Failed to lock byte ${offset}\nIs another process using the image [${this.filename}]?`, { option: 'locking' });
      }
    } else if (!want && have && unlockRest) {
      hostfile.ofdLock(this.fd, offset, 1, UNLOCK);
    }
  }

  /** QEMU's message for the first clash, in QEMU's order of checking; null when there is none. */
  private clash(held: number, unshared: number): string | null {
    for (let i = 0; i < PERM_NAMES.length; i++) {
      if (held & (1 << i) && hostfile.ofdTest(this.fd, LOCK_SHARED_BASE + i, 1, EXCLUSIVE) !== 0) {
        return `Failed to get "${PERM_NAMES[i]}" lock`;
      }
    }
    for (let i = 0; i < PERM_NAMES.length; i++) {
      if (unshared & (1 << i) && hostfile.ofdTest(this.fd, LOCK_PERM_BASE + i, 1, EXCLUSIVE) !== 0) {
        return `Failed to get shared "${PERM_NAMES[i]}" lock`;
      }
    }
    return null;
  }
}

/**
 * The permissions qemu-img and qemu-io 7.2 take on an image file, measured
 * against them (lock one byte, see which opens fail):
 * - every open but info's (which does no guest I/O) holds consistent read;
 * - a writable open holds write, and resize too unless the format is raw
 *   (a format with metadata may grow its file);
 * - a format with metadata refuses to share write and resize, so that nobody
 *   changes the file under its tables; raw (and a protocol node opened as the
 *   image) shares everything;
 * - force-share (-U) shares everything, and is refused for writable opens.
 */
export function imagePermissions(opts: { format: string | null; readOnly: boolean; forceShare?: boolean; noIO?: boolean; resize?: boolean }): Permissions {
  const passthrough = opts.format === null || opts.format === 'raw';
  let perm = opts.noIO ? 0 : PERM_CONSISTENT_READ;
  if (!opts.readOnly) perm |= PERM_WRITE | (passthrough ? 0 : PERM_RESIZE);
  if (opts.resize) perm |= PERM_RESIZE;
  const shared = opts.forceShare || passthrough ? PERM_ALL : PERM_ALL & ~(PERM_WRITE | PERM_RESIZE);
  return { perm, shared };
}

/**
 * What QEMU 7.2 takes on a format's data-file child (qcow2's data_file), as /proc/locks shows it:
 * consistent read, plus write and resize for a writable open; everything is shared but resize,
 * so raw users of the data file may read and write it while the image is open, but not resize it.
 */
export function dataFilePermissions(opts: { readOnly: boolean; forceShare?: boolean }): Permissions {
  const perm = PERM_CONSISTENT_READ | (opts.readOnly ? 0 : PERM_WRITE | PERM_RESIZE);
  return { perm, shared: opts.forceShare ? PERM_ALL : PERM_ALL & ~PERM_RESIZE };
}

/** locking=auto means on where the host has OFD locks, which every Linux this runs on has. */
export function lockingEnabled(mode: LockingMode | undefined): boolean {
  return mode !== 'off';
}
