/**
 * The ssh protocol: a remote file reached over SFTP, as QEMU's block/ssh.c
 * reaches it. One connection per node: TCP to host:port, the SSH handshake,
 * the host key check (hostkey.ts), public-key authentication with the
 * identities of the ssh-agent at $SSH_AUTH_SOCK (the only way QEMU
 * authenticates), then an SFTP session and one handle on the path.
 *
 * I/O is split into SFTP requests of at most CHUNK bytes with at most WINDOW of
 * them in flight, so a request of any length holds at most its own buffer plus
 * WINDOW * CHUNK bytes. Every request has a timeout; a silent server fails the
 * request and the connection. flush is fsync@openssh.com; a server without
 * the extension gets QEMU's warning once and flushes are no-ops.
 */
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { BlockError } from '../../errors.js';
import type { BlockStatus, ProtocolNode } from '../../node.js';
import { emitWarning } from '../../warnings.js';
import { verifyHostKey, type HostKeyCheck } from './hostkey.js';

const { Client } = ssh2;

export interface SshClientOptions {
  host: string;
  port: number;
  user: string;
  path: string;
  hostKeyCheck: HostKeyCheck;
  readOnly?: boolean;
  /** create (or truncate) the remote file, as qemu-img create does */
  create?: boolean;
  /** the ssh-agent socket; default $SSH_AUTH_SOCK */
  agent?: string;
  /** connect + handshake, and each SFTP request; default 30 s */
  timeoutMs?: number;
  /** what the node calls itself (the refreshed URI) */
  displayName?: string;
  /** where warnings go; default emitWarning (stderr, or the in-process adapter's list) */
  warn?: (line: string) => void;
}

/** SFTP read/write size per request (OpenSSH serves up to 255 KiB per request). */
const CHUNK = 128 * 1024;
/** requests in flight per operation: at most WINDOW * CHUNK = 4 MiB buffered beyond the caller's data */
const WINDOW = 32;

const SFTP_OPEN_READ = 0x1;
const SFTP_OPEN_WRITE = 0x2;
const SFTP_OPEN_CREAT = 0x8;
const SFTP_OPEN_TRUNC = 0x10;


export class SshNode implements ProtocolNode {
  readonly driver = 'ssh';
  readonly filename: string;
  readonly readOnly: boolean;
  private fileSize = 0;
  private dead: BlockError | null = null;
  private warnedFsync = false;
  private regular = false;
  /** written since the last flush (close flushes then, as bdrv_close does) */
  private dirty = false;

  private constructor(
    private readonly conn: InstanceType<typeof Client>,
    private readonly sftp: SFTPWrapper,
    private readonly handle: Buffer,
    private readonly opts: SshClientOptions,
  ) {
    this.readOnly = opts.readOnly ?? false;
    this.filename = opts.displayName ?? `ssh://${opts.user}@${opts.host}:${opts.port}${opts.path}`;
  }

  private get timeout(): number {
    return this.opts.timeoutMs ?? 30_000;
  }

  get hostport(): string {
    return `${this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host}:${this.opts.port}`;
  }

  static async connect(opts: SshClientOptions): Promise<SshNode> {
    const timeout = opts.timeoutMs ?? 30_000;
    const where = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
    const conn = new Client();
    let keyError: BlockError | null = null;
    const agent = opts.agent ?? process.env.SSH_AUTH_SOCK;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new BlockError('io', `Failed to connect to '${where}': timed out after ${timeout} ms`)), timeout);
        conn.once('ready', () => { clearTimeout(timer); resolve(); });
        // ssh2 may emit more than one error for one failure: the first decides, the others are dropped
        conn.on('error', (e: Error & { code?: string; level?: string }) => {
          clearTimeout(timer);
          if (keyError) return reject(keyError);
          if (e.level === 'client-authentication') {
            return reject(new BlockError('io', 'failed to authenticate using publickey authentication and the identities held by your ssh-agent', { option: 'user', value: opts.user }));
          }
          if (e.code === 'ECONNREFUSED') return reject(new BlockError('io', `Failed to connect to '${where}': Connection refused`, { option: 'server.port', cause: e }));
          if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return reject(new BlockError('io', `address resolution failed for ${where}: Name or service not known`, { option: 'server.host', cause: e }));
          reject(new BlockError('io', `failed to establish SSH session with ${where}: ${e.message}`, { cause: e }));
        });
        conn.connect({
          host: opts.host,
          port: opts.port,
          username: opts.user,
          // QEMU authenticates with the agent's identities only (no password, no key files)
          ...(agent ? { agent } : {}),
          readyTimeout: timeout,
          keepaliveInterval: 0,
          hostVerifier: (key: Buffer) => {
            try {
              verifyHostKey(opts.hostKeyCheck, key, opts.host, opts.port);
              return true;
            } catch (e) {
              keyError = e as BlockError;
              return false;
            }
          },
        });
      });
      const sftp = await within<SFTPWrapper>(timeout, `${where}: no SFTP session within ${timeout} ms`, (cb) => conn.sftp(cb), (e) => `failed to initialize sftp handle: ${e.message}`);
      const flags = SFTP_OPEN_READ | (opts.readOnly ? 0 : SFTP_OPEN_WRITE) | (opts.create ? SFTP_OPEN_CREAT | SFTP_OPEN_TRUNC : 0);
      const handle = await within<Buffer>(timeout, `${where}: no reply to open within ${timeout} ms`, (cb) => sftp.open(opts.path, flags, 0o644, cb), (e) => `failed to open remote file '${opts.path}': SFTP server: ${e.message}`);
      const node = new SshNode(conn, sftp, handle, opts);
      const attrs = await within<{ size: number; mode: number }>(timeout, `${where}: no reply to fstat within ${timeout} ms`, (cb) => sftp.fstat(handle, cb), (e) => `failed to read file attributes: ${e.message}`);
      if (!Number.isSafeInteger(attrs.size) || attrs.size < 0) throw new BlockError('malformed', `ssh server ${where}: file size ${attrs.size} is beyond what the reference can address`);
      node.fileSize = attrs.size;
      node.regular = (attrs.mode & 0o170000) === 0o100000;
      conn.on('error', (e: Error) => node.fail(new BlockError('io', `${node.filename}: ${e.message}`, { cause: e })));
      conn.on('close', () => node.fail(new BlockError('io', `${node.filename}: the SSH connection closed`)));
      return node;
    } catch (e) {
      conn.end();
      conn.destroy();
      throw e;
    }
  }

  private fail(e: BlockError): void {
    if (this.dead) return;
    this.dead = e;
    this.conn.destroy();
  }

  private alive(): void {
    if (this.dead) throw this.dead;
  }

  /** One SFTP request with a timeout; a timeout kills the connection (the request's fate is unknown). */
  private call<T>(what: string, start: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> {
    this.alive();
    return within<T>(this.timeout, `${this.filename}: ${what}: no reply within ${this.timeout} ms`, start, (e) => `${this.filename}: ${what} failed: ${e.message}`).catch((e: BlockError) => {
      if (/no reply within/.test(e.message)) this.fail(e);
      throw e;
    });
  }

  size(): number {
    return this.fileSize;
  }

  /** Runs the chunks of [offset, offset+length) at most WINDOW at a time. */
  private async chunked(offset: number, length: number, each: (at: number, n: number) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < length) {
        const at = next;
        const n = Math.min(CHUNK, length - at);
        next += n;
        await each(offset + at, n);
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, Math.ceil(length / CHUNK)) }, worker));
  }

  /** Like a host file: offsets past the end read as zeroes, and writes there extend the file. */
  private valid(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || !Number.isSafeInteger(offset + length)) {
      throw new BlockError('out-of-range', `${this.filename}: invalid request offset=${offset} length=${length}`, { offset });
    }
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    this.valid(offset, length);
    // past the end of the remote file there is nothing to ask for
    const inFile = Math.max(0, Math.min(length, this.fileSize - offset));
    target.fill(0, at + inFile, at + length);
    if (inFile === 0) return;
    length = inFile;
    await this.chunked(offset, length, async (pos, n) => {
      let got = 0;
      while (got < n) {
        const dst = target.subarray(at + pos - offset + got, at + pos - offset + n);
        const r = await this.call<number>('read', (cb) => this.sftp.read(this.handle, dst, 0, n - got, pos + got, (err, bytes) => cb(err, bytes)));
        if (r === 0) {
          // end of the remote file (it shrank under us): the rest reads as zeroes, as qemu pads a short read
          dst.fill(0);
          return;
        }
        got += r;
      }
    });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    if (length) await this.readInto(out, 0, offset, length);
    return out;
  }

  private writable(): void {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.writable();
    this.valid(offset, data.length);
    await this.chunked(offset, data.length, async (pos, n) => {
      const piece = data.subarray(pos - offset, pos - offset + n);
      await this.call<void>('write', (cb) => this.sftp.write(this.handle, piece, 0, n, pos, (err) => cb(err, undefined)));
    });
    this.dirty = true;
    if (offset + data.length > this.fileSize) this.fileSize = offset + data.length;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    // SFTP has no way to punch or zero a range: zeroes are written, 1 MiB at a time
    this.writable();
    this.valid(offset, length);
    const zero = Buffer.alloc(Math.min(length, 1 << 20));
    for (let at = 0; at < length; at += zero.length) await this.write(offset + at, zero.subarray(0, Math.min(zero.length, length - at)));
  }

  async discard(): Promise<void> {
    // advisory, and SFTP cannot free space: nothing to do (qemu's ssh driver has no discard either)
    this.writable();
  }

  async flush(): Promise<void> {
    this.alive();
    if (this.readOnly) return;
    this.dirty = false;
    const ext = (this.sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    if (ext['fsync@openssh.com'] !== '1') {
      if (!this.warnedFsync) {
        this.warnedFsync = true;
        // the manual's wording names the server as host:port (qemu 7.2 prints the host alone)
        (this.opts.warn ?? emitWarning)(`ssh server ${this.hostport} does not support fsync`);
      }
      return;
    }
    await this.call<void>('fsync', (cb) => this.sftp.ext_openssh_fsync(this.handle, (err: Error | null | undefined) => cb(err, undefined)));
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    // SFTP says nothing about allocation: everything is data, at its own offset (as qemu reports it)
    return { offset, length: Math.max(0, Math.min(length, this.fileSize - offset)), data: true, zero: false, present: true, depth: 0, hostOffset: offset };
  }

  /** qemu's ssh truncate: grow by writing the last byte; shrinking and preallocation are refused. */
  async truncate(size: number, prealloc: 'off' | 'falloc' | 'full' = 'off'): Promise<void> {
    this.writable();
    if (prealloc !== 'off') throw new BlockError('unsupported', `Unsupported preallocation mode '${prealloc}'`, { option: 'preallocation', value: prealloc });
    if (!Number.isSafeInteger(size) || size < 0) throw new BlockError('invalid-size', `invalid size ${size}`, { option: 'size' });
    if (size < this.fileSize) throw new BlockError('unsupported', 'ssh driver does not support shrinking files', { option: 'size', value: size });
    if (size === this.fileSize) return;
    const zero = Buffer.alloc(1);
    await this.call<void>('write', (cb) => this.sftp.write(this.handle, zero, 0, 1, size - 1, (err) => cb(err, undefined)));
    this.fileSize = size;
    this.dirty = true;
  }

  async allocatedSize(): Promise<number> {
    // qemu-img info prints "disk size: unavailable" over ssh
    return NaN;
  }

  /**
   * Renames the remote file (the image a create built under a temporary name takes
   * its real one): posix-rename@openssh.com replaces an existing target atomically;
   * plain SFTP rename refuses an existing target, so that one is removed first.
   */
  async renameTo(target: string): Promise<void> {
    const ext = (this.sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    if (ext['posix-rename@openssh.com'] === '1') {
      await this.call<void>('rename', (cb) => this.sftp.ext_openssh_rename(this.opts.path, target, (err: Error | null | undefined) => cb(err, undefined)));
      return;
    }
    await this.call<void>('remove', (cb) => this.sftp.unlink(target, (err) => cb(err && !/No such file/.test(err.message) ? err : undefined, undefined)));
    await this.call<void>('rename', (cb) => this.sftp.rename(this.opts.path, target, (err) => cb(err, undefined)));
  }

  /** Removes the remote file (a create that failed leaves nothing behind). */
  async remove(): Promise<void> {
    await this.call<void>('remove', (cb) => this.sftp.unlink(this.opts.path, (err) => cb(err, undefined)));
  }

  /** has_zero_init: a regular remote file reads as zeroes where nothing was written. */
  get zeroInit(): boolean {
    return this.regular;
  }

  async close(): Promise<void> {
    if (this.dead) return;
    let flushError: unknown = null;
    if (this.dirty) await this.flush().catch((e) => { flushError = e; });
    try {
      await this.call<void>('close', (cb) => this.sftp.close(this.handle, (err) => cb(err, undefined)));
    } catch {
      // closing anyway
    }
    this.dead = new BlockError('io', `${this.filename}: closed`);
    await new Promise<void>((resolve) => {
      this.conn.once('close', () => resolve());
      this.conn.end();
      setTimeout(resolve, 1000).unref();
    });
    this.conn.destroy();
    // what was written may not be on the server's disk: say so, after the connection is gone
    if (flushError) throw flushError;
  }
}

/** A callback API as a promise with a deadline; its error is wrapped in a BlockError by `explain`. */
function within<T>(ms: number, late: string, start: (cb: (err: Error | null | undefined, v: T) => void) => void, explain: (e: Error) => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new BlockError('io', late));
    }, ms);
    try {
      start((err, v) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err instanceof BlockError ? err : new BlockError('io', explain(err), { cause: err }));
        else resolve(v);
      });
    } catch (e) {
      done = true;
      clearTimeout(timer);
      reject(new BlockError('io', explain(e as Error), { cause: e }));
    }
  });
}

