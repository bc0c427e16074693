/**
 * The `file` protocol: a host file as a block node.
 *
 * I/O uses the synchronous fs calls on a held descriptor. That is deliberate:
 * for local files a pread/pwrite is a few microseconds, while each async fs
 * call costs a thread-pool round trip that dominates 4 KiB random I/O. The
 * node still presents the async BlockNode interface, so network protocols fit.
 */
import * as fs from 'node:fs';
import { BlockError } from '../errors.js';
import type { BlockStatus, ProtocolNode } from '../node.js';

export interface FileOpenOptions {
  readOnly?: boolean;
  /** create the file if it does not exist (truncating nothing) */
  create?: boolean;
}

export class FileNode implements ProtocolNode {
  readonly driver = 'file';
  readonly filename: string;
  readonly readOnly: boolean;
  private fd: number;
  private length: number;

  private constructor(filename: string, fd: number, readOnly: boolean) {
    this.filename = filename;
    this.fd = fd;
    this.readOnly = readOnly;
    this.length = fs.fstatSync(fd).size;
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
    if (fs.fstatSync(fd).isDirectory()) {
      fs.closeSync(fd);
      throw new BlockError('io', `Could not open '${filename}': Is a directory`);
    }
    return new FileNode(filename, fd, readOnly);
  }

  size(): number {
    return this.length;
  }

  /** Reads past the end of the file return zeroes, as QEMU's file driver does. */
  async read(offset: number, length: number): Promise<Buffer> {
    return this.readSync(offset, length);
  }

  readSync(offset: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break; // EOF: the rest stays zero
      done += n;
    }
    return buf;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.writeSync(offset, data);
  }

  writeSync(offset: number, data: Buffer): void {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
    }
    if (offset + data.length > this.length) this.length = offset + data.length;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    const end = offset + length;
    // Zeroes beyond the current end cost nothing: extend the file sparsely.
    if (offset >= this.length) {
      if (end > this.length) this.truncateSync(end);
      return;
    }
    const chunk = Buffer.alloc(Math.min(length, 1 << 20));
    for (let pos = offset; pos < end; pos += chunk.length) {
      this.writeSync(pos, chunk.subarray(0, Math.min(chunk.length, end - pos)));
    }
  }

  async discard(): Promise<void> {
    // Hole punching needs fallocate(), which Node does not expose; a discard is
    // only a hint, so doing nothing is correct (QEMU ignores failures too).
  }

  async flush(): Promise<void> {
    if (!this.readOnly) fs.fsyncSync(this.fd);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    const len = Math.min(length, Math.max(0, this.length - offset));
    return { offset, length: len, data: true, zero: false, present: true, depth: 0, hostOffset: offset };
  }

  async truncate(size: number, prealloc: 'off' | 'falloc' | 'full' = 'off'): Promise<void> {
    this.truncateSync(size, prealloc);
  }

  truncateSync(size: number, prealloc: 'off' | 'falloc' | 'full' = 'off'): void {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
    const old = this.length;
    fs.ftruncateSync(this.fd, size);
    this.length = size;
    if (size > old && prealloc !== 'off') {
      // Without posix_fallocate in Node, both modes write real zeroes: the
      // space is then reserved, which is what falloc promises.
      const chunk = Buffer.alloc(Math.min(size - old, 1 << 20));
      for (let pos = old; pos < size; pos += chunk.length) {
        this.writeSync(pos, chunk.subarray(0, Math.min(chunk.length, size - pos)));
      }
    }
  }

  async allocatedSize(): Promise<number> {
    return fs.fstatSync(this.fd).blocks * 512;
  }

  async close(): Promise<void> {
    if (this.fd >= 0) {
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
