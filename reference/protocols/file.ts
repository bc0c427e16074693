/**
 * The `file` protocol: a host file as a block node.
 *
 * I/O uses the synchronous fs calls on a held descriptor. That is deliberate:
 * for local files a pread/pwrite is a few microseconds, while each async fs
 * call costs a thread-pool round trip that dominates 4 KiB random I/O. The
 * node still presents the async BlockNode interface, so network protocols fit.
 *
 * Large writes are written behind: they go to libuv's thread pool and the call
 * returns at once, up to MAX_WRITE_BEHIND of them in flight, so a copy keeps
 * both cores busy as qemu-img's parallel requests do. Every later operation
 * that touches an in-flight range (and every flush, truncate and close) waits
 * for it first, and a failed write is reported by the next operation.
 */
import * as fs from 'node:fs';
import { BlockError } from '../errors.js';
import type { BlockStatus, ProtocolNode } from '../node.js';
import { FALLOC_ALLOCATE, FALLOC_PUNCH_HOLE, FALLOC_ZERO_RANGE, hostfile } from './hostfile.js';
import { ImageLock, lockingEnabled, type LockingMode, type Permissions } from './locking.js';

const ASYNC_THRESHOLD = 256 * 1024;
/** linux/cdrom.h: a disc is in the drive */
const CDS_DISC_OK = 4;
const MAX_WRITE_BEHIND = 4;

interface InFlight { offset: number; end: number; done: Promise<void> }

export interface FileOpenOptions {
  readOnly?: boolean;
  /** create the file if it does not exist (truncating nothing) */
  create?: boolean;
  /** the file driver's locking option; locks are taken by setPermissions, never by open itself */
  locking?: LockingMode;
  /**
   * The driver the options named: 'file' wants a regular file, host_device and
   * host_cdrom a block or character device, as QEMU's file-posix checks.
   * Omitted: anything but a directory (the reference's own internal opens).
   */
  driver?: 'file' | 'host_device' | 'host_cdrom';
}

export class FileNode implements ProtocolNode {
  readonly driver: string;
  readonly filename: string;
  readonly readOnly: boolean;
  /** a block device: its size is fixed and comes from the device (BLKGETSIZE64) */
  readonly device: boolean;
  private fd: number;
  private length: number;
  private inflight: InFlight[] = [];
  private failure: unknown = null;
  private lock: ImageLock | null;
  /** host_cdrom on a drive without a disc (or on a device that is no CD-ROM drive): I/O fails, as QEMU's does */
  private noMedium: boolean;

  private constructor(filename: string, fd: number, readOnly: boolean, driver: string, locking: LockingMode | undefined) {
    this.filename = filename;
    this.fd = fd;
    this.readOnly = readOnly;
    this.driver = driver;
    const st = fs.fstatSync(fd);
    this.device = st.isBlockDevice();
    this.length = this.device ? hostfile.blockDeviceSize(fd) : st.size;
    this.lock = lockingEnabled(locking) ? new ImageLock(fd, filename) : null;
    this.noMedium = driver === 'host_cdrom' && this.device && hostfile.cdromStatus(fd) !== CDS_DISC_OK;
  }

  private needMedium(): void {
    if (this.noMedium) throw new BlockError('io', `${this.filename}: No medium found`);
  }

  /**
   * Take (and record in the file's lock bytes) the permissions this user holds
   * and those it leaves to others; a 'locked' BlockError when another open of
   * the file clashes. Nothing happens with locking=off.
   */
  setPermissions(p: Permissions): void {
    this.lock?.set(p);
  }

  /** What this node holds and shares now (null with locking=off). */
  permissions(): Permissions | null {
    return this.lock?.state() ?? null;
  }

  static open(filename: string, opts: FileOpenOptions = {}): FileNode {
    const readOnly = opts.readOnly ?? false;
    let fd: number;
    try {
      const flags = readOnly ? 'r' : opts.create ? fs.constants.O_RDWR | fs.constants.O_CREAT : 'r+';
      fd = fs.openSync(filename, flags, 0o644);
    } catch (e) {
      throw hostError(e, filename);
    }
    const st = fs.fstatSync(fd);
    const refuse = (message: string): never => {
      fs.closeSync(fd);
      throw new BlockError('invalid-option', message, { option: 'driver', value: opts.driver });
    };
    if (st.isDirectory()) {
      fs.closeSync(fd);
      throw new BlockError('io', `Could not open '${filename}': Is a directory`);
    }
    // QEMU's words (file-posix.c raw_open_common) for a node of the wrong kind
    if (opts.driver === 'file' && !st.isFile()) refuse(`'file' driver requires '${filename}' to be a regular file`);
    if ((opts.driver === 'host_device' || opts.driver === 'host_cdrom') && !st.isBlockDevice() && !st.isCharacterDevice()) {
      refuse(`'${opts.driver}' driver requires '${filename}' to be either a character or block device`);
    }
    try {
      return new FileNode(filename, fd, readOnly, opts.driver ?? 'file', opts.locking);
    } catch (e) {
      fs.closeSync(fd);
      throw e instanceof BlockError ? e : hostError(e, filename);
    }
  }

  size(): number {
    return this.length;
  }

  /** Wait for in-flight writes overlapping [offset, end) (all of them without a range). */
  private async settle(offset = 0, end = Infinity): Promise<void> {
    const waits = this.inflight.filter((w) => w.offset < end && offset < w.end).map((w) => w.done);
    if (waits.length) await Promise.all(waits);
    if (this.failure) {
      const e = this.failure;
      this.failure = null;
      throw e instanceof BlockError ? e : new BlockError('io', `${this.filename}: write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Reads past the end of the file return zeroes, as QEMU's file driver does. */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, 0, offset, length);
    return buf;
  }

  /**
   * Large transfers go through libuv's thread pool so that a reader and a
   * writer (convert) overlap; small ones stay synchronous, where a thread-pool
   * round trip would cost more than the I/O.
   */
  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    this.needMedium();
    if (this.inflight.length) await this.settle(offset, offset + length);
    if (offset >= this.length) {
      target.fill(0, at, at + length); // wholly past EOF (also what a hostile table offset gets)
      return;
    }
    if (length < ASYNC_THRESHOLD) return this.readIntoSync(target, at, offset, length);
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(this.fd, target, at + done, length - done, offset + done, (err, bytes) => (err ? reject(err) : resolve(bytes))));
      if (n === 0) break;
      done += n;
    }
    if (done < length) target.fill(0, at + done, at + length);
  }

  private readIntoSync(target: Buffer, at: number, offset: number, length: number): void {
    if (offset >= this.length) {
      target.fill(0, at, at + length);
      return;
    }
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, target, at + done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    if (done < length) target.fill(0, at + done, at + length); // past EOF reads as zeroes
  }

  /** The caller must not change `data` until a later operation on this node has settled it. */
  async write(offset: number, data: Buffer): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    this.needMedium();
    if (!Number.isSafeInteger(offset + data.length) || offset < 0) {
      throw new BlockError('out-of-range', `${this.filename}: write at offset ${offset} is outside any file`, { offset });
    }
    if (this.inflight.length) await this.settle(offset, offset + data.length);
    if (data.length < ASYNC_THRESHOLD) return this.writeSync(offset, data);
    while (this.inflight.length >= MAX_WRITE_BEHIND) await this.inflight[0].done;
    const entry: InFlight = { offset, end: offset + data.length, done: Promise.resolve() };
    entry.done = this.writeAsync(offset, data)
      .catch((e: unknown) => { this.failure ??= e; })
      .finally(() => { this.inflight = this.inflight.filter((w) => w !== entry); });
    this.inflight.push(entry);
    if (offset + data.length > this.length) this.length = offset + data.length;
  }

  private async writeAsync(offset: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      done += await new Promise<number>((resolve, reject) =>
        fs.write(this.fd, data, done, data.length - done, offset + done, (err, bytes) => (err ? reject(err) : resolve(bytes))));
    }
  }

  private writeSync(offset: number, data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
    }
    if (offset + data.length > this.length) this.length = offset + data.length;
  }

  /** Zeroes cost no space: punch a hole when unmapping is allowed, else zero the range in place. */
  async writeZeroes(offset: number, length: number, opts: { unmap?: boolean } = {}): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    await this.settle(offset, offset + length);
    const end = offset + length;
    if (end > this.length) this.truncateSync(end);
    try {
      hostfile.fallocate(this.fd, opts.unmap ? FALLOC_PUNCH_HOLE : FALLOC_ZERO_RANGE, offset, length);
    } catch {
      // Not every file system can; writing zeroes always works.
      const chunk = Buffer.alloc(Math.min(length, 1 << 20));
      for (let pos = offset; pos < end; pos += chunk.length) {
        this.writeSync(pos, chunk.subarray(0, Math.min(chunk.length, end - pos)));
      }
    }
  }

  /** A discard punches a hole, as QEMU's file driver does; reads then return zeroes. */
  async discard(offset: number, length: number): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    await this.settle(offset, offset + length);
    const len = Math.min(length, this.length - offset);
    if (len <= 0) return;
    try {
      hostfile.fallocate(this.fd, FALLOC_PUNCH_HOLE, offset, len);
    } catch {
      // discard is advisory; a file system without hole punching keeps the data
    }
  }

  async flush(): Promise<void> {
    await this.settle();
    if (!this.readOnly) fs.fsyncSync(this.fd);
  }

  /** Data or hole, from SEEK_DATA/SEEK_HOLE, like QEMU's file driver. */
  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    if (this.inflight.length) await this.settle(offset, offset + length);
    return this.statusSync(offset, length);
  }

  private statusSync(offset: number, length: number): BlockStatus {
    const end = Math.min(offset + length, this.length);
    if (offset >= end) return { offset, length: 0, data: false, zero: true, present: true, depth: 0, hostOffset: offset };
    // a device has no holes to ask for: all of it is data, as QEMU reports it
    if (this.device) return { offset, length: end - offset, data: true, zero: false, present: true, depth: 0, hostOffset: offset };
    const nextData = hostfile.seek(this.fd, offset, 1);
    if (nextData < 0 || nextData > offset) {
      const holeEnd = nextData < 0 ? end : Math.min(nextData, end);
      return { offset, length: holeEnd - offset, data: false, zero: true, present: true, depth: 0, hostOffset: offset };
    }
    const nextHole = hostfile.seek(this.fd, offset, 0);
    const dataEnd = nextHole < 0 ? end : Math.min(nextHole, end);
    return { offset, length: dataEnd - offset, data: true, zero: false, present: true, depth: 0, hostOffset: offset };
  }

  async truncate(size: number, prealloc: 'off' | 'falloc' | 'full' = 'off'): Promise<void> {
    await this.settle();
    this.truncateSync(size, prealloc);
  }

  private truncateSync(size: number, prealloc: 'off' | 'falloc' | 'full' = 'off'): void {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    if (this.device) {
      // a device keeps its size; QEMU's host_device accepts any size up to it
      if (size > this.length) throw new BlockError('invalid-size', `Cannot resize device files: ${this.filename} holds ${this.length} bytes`, { option: 'size', value: size });
      return;
    }
    const old = this.length;
    fs.ftruncateSync(this.fd, size);
    this.length = size;
    if (size > old && prealloc === 'falloc') {
      hostfile.fallocate(this.fd, FALLOC_ALLOCATE, old, size - old);
    } else if (size > old && prealloc === 'full') {
      const chunk = Buffer.alloc(Math.min(size - old, 1 << 20));
      for (let pos = old; pos < size; pos += chunk.length) {
        this.writeSync(pos, chunk.subarray(0, Math.min(chunk.length, size - pos)));
      }
    }
  }

  async allocatedSize(): Promise<number> {
    await this.settle();
    return fs.fstatSync(this.fd).blocks * 512;
  }

  async close(): Promise<void> {
    if (this.fd >= 0) {
      try {
        await this.settle();
      } catch (e) {
        fs.closeSync(this.fd);
        this.fd = -1;
        throw e;
      }
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** Turn a Node fs error into the BlockError qemu-img users recognise. */
export function hostError(e: unknown, filename: string): BlockError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') {
    return new BlockError('not-found', `Could not open '${filename}': No such file or directory`, { cause: e });
  }
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new BlockError('io', `Could not open '${filename}': Permission denied`, { cause: e });
  }
  return new BlockError('io', `Could not open '${filename}': ${err.message}`, { cause: e });
}
