/**
 * The gluster protocol: an image on a GlusterFS volume, reached through
 * libgfapi (./addon.ts), as QEMU's block/gluster.c reaches it. libgfapi rather
 * than the GlusterFS RPC protocol: QEMU itself goes through libgfapi, so the
 * volfile fetch, the client graph it builds and the errno values it returns are
 * the ones QEMU sees; the RPC/XDR wire protocol with its dict encoding and
 * translator graph is libgfapi's business, not what qbc specifies.
 *
 * Connections: one glfs_t per (volume, server list, logfile, debug), shared by
 * every node of the process that opens an image there (QEMU likewise keeps one
 * glfs per volume). The servers are handed to libgfapi in order, which tries
 * them in that order. A connection is never given glfs_fini at close: fini
 * waits some 10 s for libgfapi's timer thread, and the process's exit ends the
 * connection as well; dropGlusterConnections() finis them all (the test steps
 * call it before they stop their glusterd).
 *
 * I/O is split into libgfapi calls of at most CHUNK bytes, each on the thread
 * pool, so one request holds no more than its own buffer. Reads past the end
 * of the file read as zeroes.
 */
import { BlockError } from '../../errors.js';
import type { BlockStatus, ProtocolNode } from '../../node.js';
import { emitWarning } from '../../warnings.js';
import { glusterAddon, type GlfsError, type GlfsFd, type GlfsHandle } from './addon.js';

export const GLUSTER_DEFAULT_PORT = 24007;
/** QEMU's defaults: libgfapi log level 4 (warnings), log to stderr */
export const GLUSTER_DEBUG_DEFAULT = 4;
export const GLUSTER_DEBUG_MAX = 9;
export const GLUSTER_LOGFILE_DEFAULT = '-';
const CHUNK = 4 * 1024 * 1024;
const SECTOR = 512;

export interface GlusterServer {
  type: 'inet' | 'unix';
  host?: string;
  port?: number;
  path?: string;
}

export interface GlusterOptions {
  volume: string;
  path: string;
  servers: GlusterServer[];
  debug: number;
  logfile: string;
}

/** The gluster node's typed -blockdev options to GlusterOptions, with QEMU's defaults and its checks. */
export function glusterOptions(o: Record<string, unknown>): GlusterOptions {
  if (typeof o.volume !== 'string' || !o.volume) throw new BlockError('invalid-option', "Parameter 'volume' is missing", { option: 'volume' });
  if (typeof o.path !== 'string' || !o.path) throw new BlockError('invalid-option', "Parameter 'path' is missing", { option: 'path' });
  const list = Array.isArray(o.server) ? (o.server as Record<string, unknown>[]) : [];
  if (list.length === 0) throw new BlockError('invalid-option', "Parameter 'server' is missing", { option: 'server' });
  const servers = list.map((s, i): GlusterServer => {
    const t = s.type === 'tcp' ? 'inet' : s.type;
    if (t === 'unix') {
      const p = s.path ?? s.socket;
      if (typeof p !== 'string' || !p) throw new BlockError('invalid-option', `Parameter 'path' is missing\nhint: check in 'server' array index '${i}'`, { option: `server.${i}.path` });
      return { type: 'unix', path: p };
    }
    if (t !== 'inet') throw new BlockError('invalid-option', `Parameter 'type' may be 'inet' or 'unix'\nhint: check in 'server' array index '${i}'`, { option: `server.${i}.type`, value: s.type });
    if (typeof s.host !== 'string' || !s.host) throw new BlockError('invalid-option', `Parameter 'host' is missing\nhint: check in 'server' array index '${i}'`, { option: `server.${i}.host` });
    const portText = s.port === undefined ? String(GLUSTER_DEFAULT_PORT) : String(s.port);
    if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
      throw new BlockError('invalid-option', `'${portText}' is not a valid port number\nhint: check in 'server' array index '${i}'`, { option: `server.${i}.port`, value: portText });
    }
    return { type: 'inet', host: s.host, port: Number(portText) };
  });
  let debug = GLUSTER_DEBUG_DEFAULT;
  if (o.debug !== undefined) {
    const d = Number(o.debug);
    if (!Number.isInteger(d)) throw new BlockError('invalid-option', `Parameter 'debug' expects a number, not '${String(o.debug)}'`, { option: 'debug', value: o.debug });
    // QEMU clamps the level into libgfapi's range rather than refusing it
    debug = Math.min(Math.max(d, 0), GLUSTER_DEBUG_MAX);
  }
  const logfile = typeof o.logfile === 'string' && o.logfile ? o.logfile : GLUSTER_LOGFILE_DEFAULT;
  return { volume: o.volume, path: o.path, servers, debug, logfile };
}

function serverHint(s: GlusterServer): string {
  return s.type === 'unix' ? `hint: failed on socket ${s.path} ` : `hint: failed on host ${s.host} and port ${s.port} `;
}

interface Conn {
  fs: Promise<GlfsHandle>;
}
const connections = new Map<string, Conn>();

function keyOf(o: GlusterOptions): string {
  return JSON.stringify([o.volume, o.servers, o.logfile, o.debug]);
}

/** The shared connection for the volume and server list (glfs_new, the servers in order, logging, glfs_init). */
function connect(o: GlusterOptions): Promise<GlfsHandle> {
  const key = keyOf(o);
  const had = connections.get(key);
  if (had) return had.fs;
  const addon = glusterAddon();
  const servers = o.servers.map((s) => (s.type === 'unix'
    ? { transport: 'unix' as const, host: s.path!, port: 0 }
    : { transport: 'tcp' as const, host: s.host!, port: s.port! }));
  const fs = addon.connect(o.volume, servers, o.logfile, o.debug).catch((e: unknown) => {
    connections.delete(key);
    const err = e as GlfsError;
    // QEMU's message, its hints (every server tried) and errno; libgfapi's own log says more
    throw new BlockError('io', `Gluster connection for volume ${o.volume}, path ${o.path} failed to connect\n${o.servers.map(serverHint).join('')}Please refer to gluster logs for more info`, { option: 'server', cause: err });
  });
  connections.set(key, { fs });
  return fs;
}

/** glfs_fini for every cached connection; they are forgotten first, so later opens connect anew. */
export async function dropGlusterConnections(): Promise<void> {
  const all = [...connections.values()];
  connections.clear();
  await Promise.all(all.map(async (c) => {
    const fs = await c.fs.catch(() => null);
    if (fs) await glusterAddon().fini(fs).catch(() => undefined);
  }));
}

function ioError(what: string, filename: string, e: unknown): BlockError {
  const err = e as GlfsError;
  return new BlockError('io', `${filename}: ${what} failed: ${err.message}`, { cause: e });
}

export interface GlusterOpenOptions extends GlusterOptions {
  readOnly?: boolean;
  /** create (or truncate) the file, as qemu-img create does */
  create?: boolean;
  displayName?: string;
}

export class GlusterNode implements ProtocolNode {
  readonly driver = 'gluster';
  readonly filename: string;
  readonly readOnly: boolean;
  private closed = false;

  private constructor(
    private readonly fs: GlfsHandle,
    private readonly fd: GlfsFd,
    private fileSize: number,
    private readonly opts: GlusterOpenOptions,
  ) {
    this.readOnly = opts.readOnly ?? false;
    this.filename = opts.displayName ?? `gluster://${opts.volume}/${opts.path}`;
  }

  static async connect(opts: GlusterOpenOptions): Promise<GlusterNode> {
    const fs = await connect(opts);
    const addon = glusterAddon();
    let fd: GlfsFd;
    try {
      fd = await addon.open(fs, opts.path, opts.readOnly ?? false, opts.create ?? false);
    } catch (e) {
      const err = e as GlfsError;
      const code = err.code === 'ENOENT' ? 'not-found' : err.code === 'EACCES' || err.code === 'EROFS' ? 'read-only' : 'io';
      throw new BlockError(code, `Could not open '${opts.path}': ${err.message.replace(/^glfs_\w+: /, '')}`, { option: 'path', value: opts.path, cause: e });
    }
    let size: number;
    try {
      size = await addon.fstat(fd);
    } catch (e) {
      await addon.close(fd).catch(() => undefined);
      throw ioError('fstat', opts.path, e);
    }
    return new GlusterNode(fs, fd, size, opts);
  }

  size(): number {
    return this.fileSize;
  }

  private alive(): void {
    if (this.closed) throw new BlockError('io', `${this.filename}: the gluster node is closed`);
  }

  private valid(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new BlockError('out-of-range', `${this.filename}: invalid request offset=${offset} length=${length}`, { offset });
    }
  }

  private writable(): void {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
  }

  async readInto(target: Buffer, at: number, offset: number, length: number): Promise<void> {
    this.alive();
    this.valid(offset, length);
    const addon = glusterAddon();
    for (let done = 0; done < length;) {
      const n = Math.min(CHUNK, length - done);
      const dst = target.subarray(at + done, at + done + n);
      let got: number;
      try {
        got = await addon.pread(this.fd, dst, offset + done);
      } catch (e) {
        throw ioError('read', this.filename, e);
      }
      if (got < n) {
        // the end of the file: the rest reads as zeroes, as QEMU pads a short read
        target.fill(0, at + done + got, at + length);
        return;
      }
      done += n;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    if (length) await this.readInto(out, 0, offset, length);
    return out;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.alive();
    this.writable();
    this.valid(offset, data.length);
    const addon = glusterAddon();
    // QEMU's block layer writes to a gluster file in whole 512-byte sectors, so a write that
    // grows the file leaves it a multiple of 512 long; qemu's gluster driver fails a short
    // read with EIO, so a file whose last sector is partial could not be read by qemu
    const end = offset + data.length;
    if (end > this.fileSize && end % SECTOR !== 0) {
      const padded = Buffer.alloc(data.length + (SECTOR - (end % SECTOR)));
      data.copy(padded);
      data = padded;
    }
    for (let done = 0; done < data.length; done += CHUNK) {
      const piece = data.subarray(done, Math.min(data.length, done + CHUNK));
      try {
        await addon.pwrite(this.fd, piece, offset + done);
      } catch (e) {
        throw ioError('write', this.filename, e);
      }
    }
    if (offset + data.length > this.fileSize) this.fileSize = offset + data.length;
  }

  /** glfs_zerofill (QEMU's co_pwrite_zeroes for gluster). */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.alive();
    this.writable();
    this.valid(offset, length);
    if (length === 0) return;
    try {
      await glusterAddon().zerofill(this.fd, offset, length);
    } catch (e) {
      throw ioError('zerofill', this.filename, e);
    }
    if (offset + length > this.fileSize) this.fileSize = offset + length;
  }

  /** glfs_discard: advisory; the range then reads as zeroes where the brick's file system punches holes. */
  async discard(offset: number, length: number): Promise<void> {
    this.alive();
    this.writable();
    this.valid(offset, length);
    if (length === 0) return;
    try {
      await glusterAddon().discard(this.fd, offset, length);
    } catch (e) {
      throw ioError('discard', this.filename, e);
    }
  }

  async flush(): Promise<void> {
    this.alive();
    if (this.readOnly) return;
    try {
      await glusterAddon().fsync(this.fd);
    } catch (e) {
      throw ioError('fsync', this.filename, e);
    }
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    // the reference does not ask the brick for holes (glfs_lseek SEEK_DATA): everything is data
    return { offset, length: Math.max(0, Math.min(length, this.fileSize - offset)), data: true, zero: false, present: true, depth: 0, hostOffset: offset };
  }

  /** glfs_ftruncate; preallocation full writes zeroes over the new part (glfs_zerofill). */
  async truncate(size: number, prealloc: 'off' | 'falloc' | 'full' = 'off'): Promise<void> {
    this.alive();
    this.writable();
    if (!Number.isSafeInteger(size) || size < 0) throw new BlockError('invalid-size', `invalid size ${size}`, { option: 'size' });
    if (prealloc === 'falloc') throw new BlockError('unsupported', "Unsupported preallocation mode: falloc", { option: 'preallocation', value: prealloc });
    const old = this.fileSize;
    try {
      await glusterAddon().ftruncate(this.fd, size);
    } catch (e) {
      throw ioError('truncate', this.filename, e);
    }
    this.fileSize = size;
    if (prealloc === 'full' && size > old) await this.writeZeroes(old, size - old);
  }

  async allocatedSize(): Promise<number> {
    // the reference does not report the brick's allocation: qemu-img info prints "disk size: unavailable"
    return NaN;
  }

  /** Renames the file in the volume (a create built under a temporary name takes its real one). */
  async renameTo(target: string): Promise<void> {
    try {
      await glusterAddon().rename(this.fs, this.opts.path, target);
    } catch (e) {
      throw ioError('rename', this.filename, e);
    }
  }

  /** Removes the file (a create that failed leaves nothing behind). */
  async remove(): Promise<void> {
    await glusterAddon().unlink(this.fs, this.opts.path).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await glusterAddon().close(this.fd);
    } catch (e) {
      throw ioError('close', this.filename, e);
    }
  }
}

/** Opens the gluster node; `warnings` are what parsing its filename said (gluster+rdma falls back to tcp, with qemu's warning). */
export function openGlusterSpec(o: Record<string, unknown>, readOnly: boolean, displayName: string, warnings: readonly string[] = []): Promise<GlusterNode> {
  const opts = glusterOptions(o);
  for (const w of warnings) emitWarning(w);
  return GlusterNode.connect({ ...opts, readOnly, displayName });
}

/**
 * qemu-img create over gluster: the image is built in a temporary file beside
 * the target in the volume and renamed into place once complete and flushed, so a
 * failure leaves neither a half-written image nor a clobbered one.
 */
export async function createOverGluster(o: Record<string, unknown>, build: (file: GlusterNode) => Promise<void>): Promise<void> {
  const opts = glusterOptions(o);
  const cut = opts.path.lastIndexOf('/');
  const tmp = `${opts.path.slice(0, cut + 1)}.${opts.path.slice(cut + 1)}.qbc-${process.pid}-${Date.now()}.tmp`;
  const node = await GlusterNode.connect({ ...opts, path: tmp, readOnly: false, create: true });
  try {
    await build(node);
    await node.flush();
    await node.renameTo(opts.path);
  } catch (e) {
    await node.remove();
    await node.close().catch(() => undefined);
    throw e;
  }
  await node.close();
}
