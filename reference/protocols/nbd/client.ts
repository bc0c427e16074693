/**
 * The NBD client: a protocol node over a connection to an NBD server, spoken
 * as QEMU's block/nbd.c speaks it. The fixed newstyle handshake asks for
 * structured replies, the base:allocation and qemu:allocation-depth meta
 * contexts and the export (NBD_OPT_GO, falling back to NBD_OPT_EXPORT_NAME for
 * servers without GO); transmission pipelines requests by cookie.
 *
 * Everything the server says is checked before it is believed: magics, reply
 * lengths (never more than MAX_PAYLOAD buffered for one chunk), chunk offsets
 * inside the request they answer, cookies that were asked for, an export size
 * a JS number can hold. A violation fails every pending request with a
 * BlockError and drops the connection; a silent server times out.
 */
import * as net from 'node:net';
import { BlockError } from '../../errors.js';
import { checkRange, type BlockStatus, type ProtocolNode } from '../../node.js';
import {
  CMD, CMD_FLAG_REQ_ONE, CONTEXT_ALLOCATION_DEPTH, CONTEXT_BASE_ALLOCATION, ERR, errnoName, FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT, INFO, MAX_OPTION_DATA, MAX_PAYLOAD, MAX_STRING,
  NBDMAGIC, OLDSTYLE_MAGIC, OPT, OPTION_REPLY_MAGIC, REP, REP_ERR, REPLY_FLAG_DONE, REPLY_TYPE, REPLY_TYPE_IS_ERROR,
  REQUEST_MAGIC, SIMPLE_REPLY_MAGIC, STATE_HOLE, STATE_ZERO, STRUCTURED_REPLY_MAGIC, TF_READ_ONLY, TF_SEND_FLUSH,
  TF_SEND_TRIM, TF_SEND_WRITE_ZEROES,
} from './constants.js';
import { putU64, u64 } from './wire.js';
import { SocketReader } from '../socket-reader.js';

export type NbdServerAddress = { type: 'inet'; host: string; port: number } | { type: 'unix'; path: string };

export interface NbdClientOptions {
  server: NbdServerAddress;
  /** export name; "" is the default export (qemu-nbd without -x) */
  export?: string;
  readOnly?: boolean;
  /** per handshake step and per request; default 30 s */
  timeoutMs?: number;
  /** what the node calls itself in messages and in qemu-img info (the URI) */
  displayName?: string;
}

interface Pending {
  type: number;
  offset: number;
  length: number;
  /** READ: the buffer chunks land in */
  data?: Buffer;
  /** BLOCK_STATUS: descriptors per context id */
  status?: Map<number, Array<{ length: number; flags: number }>>;
  /** a structured error chunk, reported once the DONE chunk arrives */
  error?: BlockError;
  timer: NodeJS.Timeout;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export function describeAddress(a: NbdServerAddress): string {
  return a.type === 'unix' ? `unix:${a.path}` : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

export class NbdClientNode implements ProtocolNode {
  readonly driver = 'nbd';
  readonly filename: string;
  readonly readOnly: boolean;
  private exportSize = 0;
  private flags = 0;
  private structured = false;
  private contexts = new Map<string, number>();
  private maxBlock = MAX_PAYLOAD;
  private nextCookie = 1n;
  private pending = new Map<bigint, Pending>();
  private dead: BlockError | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly reader: SocketReader,
    private readonly opts: NbdClientOptions,
  ) {
    this.filename = opts.displayName ?? `nbd:${describeAddress(opts.server)}`;
    this.readOnly = opts.readOnly ?? false;
  }

  private get timeout(): number {
    return this.opts.timeoutMs ?? 30_000;
  }

  static async connect(opts: NbdClientOptions): Promise<NbdClientNode> {
    const where = describeAddress(opts.server);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = opts.server.type === 'unix'
        ? net.connect({ path: opts.server.path })
        : net.connect({ host: opts.server.host, port: opts.server.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new BlockError('io', `Failed to connect to '${where}': timed out`));
      }, opts.timeoutMs ?? 30_000);
      s.once('connect', () => { clearTimeout(timer); resolve(s); });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = e.code === 'ECONNREFUSED' ? 'Connection refused' : e.code === 'ENOENT' ? 'No such file or directory' : e.message;
        reject(new BlockError('io', `Failed to connect to '${opts.server.type === 'unix' ? opts.server.path : where}': ${why}`, { cause: e }));
      });
    });
    socket.setNoDelay(true);
    const node = new NbdClientNode(socket, new SocketReader(socket, `nbd server ${where}`, MAX_PAYLOAD + 4096), opts);
    try {
      await node.handshake();
    } catch (e) {
      socket.destroy();
      throw e;
    }
    if (node.readOnly === false && node.flags & TF_READ_ONLY) {
      socket.destroy();
      throw new BlockError('read-only', `export '${opts.export ?? ''}' on ${where} is read-only; open it read-only`);
    }
    node.startReplyLoop();
    return node;
  }

  // ---------------------------------------------------------------- handshake

  private bad(what: string): BlockError {
    return new BlockError('malformed', `nbd server ${describeAddress(this.opts.server)}: ${what}`);
  }

  private async handshake(): Promise<void> {
    const t = this.timeout;
    const hello = await this.reader.read(18, t);
    if (hello.readBigUInt64BE(0) !== NBDMAGIC) throw this.bad('not an NBD server (bad magic)');
    const second = hello.readBigUInt64BE(8);
    if (second === OLDSTYLE_MAGIC) throw new BlockError('unsupported', `nbd server ${describeAddress(this.opts.server)} speaks the oldstyle handshake, which QEMU no longer supports`);
    if (second !== IHAVEOPT) throw this.bad('bad handshake magic');
    const hflags = hello.readUInt16BE(16);
    if (!(hflags & FLAG_FIXED_NEWSTYLE)) throw new BlockError('unsupported', `nbd server ${describeAddress(this.opts.server)} does not speak fixed newstyle`);
    const noZeroes = (hflags & FLAG_NO_ZEROES) !== 0;
    const cflags = Buffer.alloc(4);
    cflags.writeUInt32BE(FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0));
    this.socket.write(cflags);

    const name = Buffer.from(this.opts.export ?? '', 'utf8');
    if (name.length > MAX_STRING) throw new BlockError('invalid-option', `export name is ${name.length} bytes, at most ${MAX_STRING}`, { option: 'export' });

    const sr = await this.option(OPT.STRUCTURED_REPLY, Buffer.alloc(0));
    this.structured = sr.type === REP.ACK;
    if (!this.structured && !(sr.type & REP_ERR)) throw this.bad(`unexpected reply ${sr.type} to STRUCTURED_REPLY`);

    if (this.structured) await this.setMetaContexts(name);

    const go = Buffer.alloc(4 + name.length + 2 + 2);
    go.writeUInt32BE(name.length, 0);
    name.copy(go, 4);
    go.writeUInt16BE(1, 4 + name.length);
    go.writeUInt16BE(INFO.BLOCK_SIZE, 6 + name.length);
    this.send(OPT.GO, go);
    let haveExport = false;
    for (;;) {
      const r = await this.optionReply(OPT.GO);
      if (r.type === REP.INFO) {
        if (r.data.length < 2) throw this.bad('short NBD_REP_INFO');
        const kind = r.data.readUInt16BE(0);
        if (kind === INFO.EXPORT) {
          if (r.data.length !== 12) throw this.bad('NBD_INFO_EXPORT of the wrong length');
          this.setExport(u64(r.data, 2), r.data.readUInt16BE(10));
          haveExport = true;
        } else if (kind === INFO.BLOCK_SIZE) {
          if (r.data.length !== 14) throw this.bad('NBD_INFO_BLOCK_SIZE of the wrong length');
          const max = r.data.readUInt32BE(10);
          if (max > 0) this.maxBlock = Math.min(MAX_PAYLOAD, max);
        }
        continue;
      }
      if (r.type === REP.ACK) {
        if (!haveExport) throw this.bad('NBD_OPT_GO acknowledged without NBD_INFO_EXPORT');
        return;
      }
      if (r.type === REP.ERR_UNSUP) return this.exportName(name, noZeroes);
      if (r.type & REP_ERR) throw this.optionError('NBD_OPT_GO', r.type, r.data);
      throw this.bad(`unexpected reply type ${r.type} to NBD_OPT_GO`);
    }
  }

  private async setMetaContexts(name: Buffer): Promise<void> {
    const queries = [CONTEXT_BASE_ALLOCATION, CONTEXT_ALLOCATION_DEPTH].map((q) => Buffer.from(q));
    const data = Buffer.alloc(4 + name.length + 4 + queries.reduce((n, q) => n + 4 + q.length, 0));
    let at = data.writeUInt32BE(name.length, 0);
    at += name.copy(data, at);
    at = data.writeUInt32BE(queries.length, at);
    for (const q of queries) {
      at = data.writeUInt32BE(q.length, at);
      at += q.copy(data, at);
    }
    this.send(OPT.SET_META_CONTEXT, data);
    for (;;) {
      const r = await this.optionReply(OPT.SET_META_CONTEXT);
      if (r.type === REP.META_CONTEXT) {
        if (r.data.length < 4 || r.data.length > 4 + MAX_STRING) throw this.bad('NBD_REP_META_CONTEXT of a bad length');
        this.contexts.set(r.data.subarray(4).toString('utf8'), r.data.readUInt32BE(0));
        continue;
      }
      if (r.type === REP.ACK) return;
      // a server without meta contexts: block status reads as all data
      if (r.type & REP_ERR) return;
      throw this.bad(`unexpected reply type ${r.type} to NBD_OPT_SET_META_CONTEXT`);
    }
  }

  private async exportName(name: Buffer, noZeroes: boolean): Promise<void> {
    this.send(OPT.EXPORT_NAME, name);
    const b = await this.reader.read(noZeroes ? 10 : 134, this.timeout).catch((e) => {
      throw new BlockError('not-found', `export '${name.toString()}' not available on ${describeAddress(this.opts.server)} (the server closed the connection)`, { cause: e });
    });
    this.setExport(u64(b, 0), b.readUInt16BE(8));
  }

  private setExport(size: number, flags: number): void {
    // 2^63 and its like would lose precision in a JS number: refuse instead of rounding
    if (!Number.isSafeInteger(size)) throw this.bad(`export size ${size === Infinity ? '>= 2^53' : size} is beyond what the reference can address (2^53 - 1)`);
    this.exportSize = size;
    this.flags = flags;
  }

  private send(opt: number, data: Buffer): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(data.length, 12);
    this.socket.write(Buffer.concat([h, data]));
  }

  private async option(opt: number, data: Buffer): Promise<{ type: number; data: Buffer }> {
    this.send(opt, data);
    return this.optionReply(opt);
  }

  private async optionReply(opt: number): Promise<{ type: number; data: Buffer }> {
    const h = await this.reader.read(20, this.timeout);
    if (h.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw this.bad('bad option reply magic');
    if (h.readUInt32BE(8) !== opt) throw this.bad(`reply for option ${h.readUInt32BE(8)} while waiting for ${opt}`);
    const len = h.readUInt32BE(16);
    if (len > MAX_OPTION_DATA) throw this.bad(`option reply of ${len} bytes (at most ${MAX_OPTION_DATA} accepted)`);
    return { type: h.readUInt32BE(12), data: await this.reader.read(len, this.timeout) };
  }

  private optionError(what: string, type: number, data: Buffer): BlockError {
    const text = data.toString('utf8').replace(/[^\x20-\x7e]/g, '?');
    const name = this.opts.export ?? '';
    if (type === REP.ERR_UNKNOWN) {
      return new BlockError('not-found', `Requested export not available${text ? `\nserver reported: ${text}` : ` (export '${name}')`}`, { option: 'export', value: name });
    }
    if (type === REP.ERR_TLS_REQD) return new BlockError('unsupported', `nbd server ${describeAddress(this.opts.server)} requires TLS, which the reference client does not speak`);
    return new BlockError('io', `${what} refused by ${describeAddress(this.opts.server)} (reply ${(type - REP_ERR) >>> 0})${text ? `: ${text}` : ''}`);
  }

  // ---------------------------------------------------------------- transmission

  private fail(e: BlockError): void {
    if (this.dead) return;
    this.dead = e;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.socket.destroy();
  }

  private startReplyLoop(): void {
    void (async () => {
      try {
        for (;;) await this.readReply();
      } catch (e) {
        this.fail(e instanceof BlockError ? e : new BlockError('io', `nbd: ${(e as Error).message}`, { cause: e }));
      }
    })();
  }

  private async readReply(): Promise<void> {
    const magicBuf = await this.reader.read(4, 0);
    const magic = magicBuf.readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const h = await this.reader.read(12, this.timeout);
      const err = h.readUInt32BE(0);
      const p = this.take(h.readBigUInt64BE(4));
      if (err === 0 && p.type === CMD.READ) {
        const data = await this.reader.read(p.length, this.timeout);
        data.copy(p.data!, 0);
      }
      this.finish(p, err ? this.wireError(err, '') : undefined);
      return;
    }
    if (magic !== STRUCTURED_REPLY_MAGIC || !this.structured) throw this.bad(`bad reply magic 0x${magic.toString(16)}`);
    const h = await this.reader.read(16, this.timeout);
    const flags = h.readUInt16BE(0);
    const type = h.readUInt16BE(2);
    const cookie = h.readBigUInt64BE(4);
    const len = h.readUInt32BE(12);
    const p = this.pending.get(cookie);
    if (!p) throw this.bad(`reply for cookie ${cookie}, which no request carries`);
    if (len > MAX_PAYLOAD + 64) throw this.bad(`reply chunk of ${len} bytes (at most ${MAX_PAYLOAD} accepted)`);
    const body = await this.reader.read(len, this.timeout);
    this.chunk(p, type, body);
    if (flags & REPLY_FLAG_DONE) {
      this.pending.delete(cookie);
      this.finish(p, p.error);
    }
  }

  private chunk(p: Pending, type: number, body: Buffer): void {
    if (type & REPLY_TYPE_IS_ERROR) {
      if (body.length < 6) throw this.bad('short error chunk');
      const err = body.readUInt32BE(0);
      const mlen = body.readUInt16BE(4);
      if (6 + mlen > body.length) throw this.bad('error chunk message overruns the chunk');
      const msg = body.subarray(6, 6 + mlen).toString('utf8').replace(/[^\x20-\x7e]/g, '?');
      p.error ??= this.wireError(err || ERR.EIO, msg);
      return;
    }
    switch (type) {
      case REPLY_TYPE.NONE:
        if (body.length) throw this.bad('NBD_REPLY_TYPE_NONE with a payload');
        return;
      case REPLY_TYPE.OFFSET_DATA: {
        if (p.type !== CMD.READ || body.length < 8) throw this.bad('unexpected data chunk');
        const off = u64(body, 0);
        const n = body.length - 8;
        if (off < p.offset || off + n > p.offset + p.length) throw this.bad(`data chunk ${off}+${n} outside the request ${p.offset}+${p.length}`);
        body.copy(p.data!, off - p.offset, 8);
        return;
      }
      case REPLY_TYPE.OFFSET_HOLE: {
        if (p.type !== CMD.READ || body.length !== 12) throw this.bad('unexpected hole chunk');
        const off = u64(body, 0);
        const n = body.readUInt32BE(8);
        if (off < p.offset || off + n > p.offset + p.length) throw this.bad(`hole chunk ${off}+${n} outside the request ${p.offset}+${p.length}`);
        p.data!.fill(0, off - p.offset, off - p.offset + n);
        return;
      }
      case REPLY_TYPE.BLOCK_STATUS: {
        if (p.type !== CMD.BLOCK_STATUS || body.length < 12 || (body.length - 4) % 8 !== 0) throw this.bad('unexpected block status chunk');
        const id = body.readUInt32BE(0);
        if (![...this.contexts.values()].includes(id)) throw this.bad(`block status for context ${id}, which was not negotiated`);
        const list: Array<{ length: number; flags: number }> = [];
        for (let at = 4; at < body.length; at += 8) list.push({ length: body.readUInt32BE(at), flags: body.readUInt32BE(at + 4) });
        p.status!.set(id, list);
        return;
      }
      default:
        throw this.bad(`unknown reply chunk type ${type}`);
    }
  }

  private take(cookie: bigint): Pending {
    const p = this.pending.get(cookie);
    if (!p) throw this.bad(`reply for cookie ${cookie}, which no request carries`);
    this.pending.delete(cookie);
    return p;
  }

  private finish(p: Pending, err?: BlockError): void {
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve();
  }

  private wireError(errno: number, msg: string): BlockError {
    const code = errno === ERR.EPERM ? 'read-only' : errno === ERR.EINVAL || errno === ERR.EOVERFLOW ? 'out-of-range' : 'io';
    return new BlockError(code, `nbd server ${describeAddress(this.opts.server)}: ${errnoName(errno)}${msg ? `: ${msg}` : ''}`);
  }

  private request(type: number, offset: number, length: number, opts: { flags?: number; payload?: Buffer; data?: Buffer } = {}): Promise<Pending> {
    if (this.dead) return Promise.reject(this.dead);
    const cookie = this.nextCookie++;
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(cookie, 8);
    putU64(h, 16, offset);
    h.writeUInt32BE(length, 24);
    return new Promise<Pending>((resolve, reject) => {
      const p: Pending = {
        type, offset, length, data: opts.data,
        status: type === CMD.BLOCK_STATUS ? new Map() : undefined,
        timer: setTimeout(() => this.fail(new BlockError('io', `nbd server ${describeAddress(this.opts.server)}: no reply within ${this.timeout} ms`)), this.timeout),
        resolve: () => resolve(p),
        reject,
      };
      this.pending.set(cookie, p);
      this.socket.write(opts.payload ? Buffer.concat([h, opts.payload]) : h);
    });
  }

  private writable(): void {
    if (this.readOnly) throw new BlockError('read-only', `${this.filename}: opened read-only`);
  }

  // ---------------------------------------------------------------- BlockNode

  size(): number {
    return this.exportSize;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    const parts: Promise<Pending>[] = [];
    for (let at = 0; at < length; at += this.maxBlock) {
      const n = Math.min(this.maxBlock, length - at);
      parts.push(this.request(CMD.READ, offset + at, n, { data: out.subarray(at, at + n) }));
    }
    await Promise.all(parts);
    return out;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.writable();
    checkRange(this, offset, data.length);
    const parts: Promise<Pending>[] = [];
    for (let at = 0; at < data.length; at += this.maxBlock) {
      const piece = data.subarray(at, Math.min(data.length, at + this.maxBlock));
      parts.push(this.request(CMD.WRITE, offset + at, piece.length, { payload: piece }));
    }
    await Promise.all(parts);
  }

  async writeZeroes(offset: number, length: number, opts: { unmap?: boolean } = {}): Promise<void> {
    this.writable();
    checkRange(this, offset, length);
    const step = 0x80000000; // lengths are 32-bit on the wire
    for (let at = 0; at < length; at += step) {
      const n = Math.min(step, length - at);
      if (this.flags & TF_SEND_WRITE_ZEROES) {
        await this.request(CMD.WRITE_ZEROES, offset + at, n, { flags: opts.unmap ? 0 : 1 << 1 /* NO_HOLE */ });
      } else {
        for (let z = 0; z < n; z += this.maxBlock) await this.write(offset + at + z, Buffer.alloc(Math.min(this.maxBlock, n - z)));
      }
    }
  }

  async discard(offset: number, length: number): Promise<void> {
    this.writable();
    checkRange(this, offset, length);
    if (!(this.flags & TF_SEND_TRIM)) return; // discard is advisory
    const step = 0x80000000;
    for (let at = 0; at < length; at += step) await this.request(CMD.TRIM, offset + at, Math.min(step, length - at));
  }

  async flush(): Promise<void> {
    if (this.readOnly || !(this.flags & TF_SEND_FLUSH)) return;
    await this.request(CMD.FLUSH, 0, 0);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this, offset, length);
    const base = this.contexts.get(CONTEXT_BASE_ALLOCATION);
    // the export is the guest disk byte for byte: qemu reports its offsets as valid
    const all: BlockStatus = { offset, length, data: true, zero: false, present: true, depth: 0, hostOffset: offset };
    if (base === undefined || length === 0) return all;
    const n = Math.min(length, 0x80000000);
    const p = await this.request(CMD.BLOCK_STATUS, offset, n, { flags: CMD_FLAG_REQ_ONE });
    const first = p.status!.get(base)?.[0];
    if (!first || first.length === 0 || first.length > n) throw this.bad('block status reply without a usable base:allocation extent');
    let len = first.length;
    const depthId = this.contexts.get(CONTEXT_ALLOCATION_DEPTH);
    const depth = depthId === undefined ? undefined : p.status!.get(depthId)?.[0];
    if (depth && depth.length > 0) len = Math.min(len, depth.length);
    return {
      offset,
      length: len,
      data: !(first.flags & STATE_HOLE),
      zero: (first.flags & STATE_ZERO) !== 0,
      present: depth ? depth.flags !== 0 : true,
      depth: 0,
      hostOffset: offset,
    };
  }

  async truncate(): Promise<void> {
    throw new BlockError('unsupported', `${this.filename}: an NBD export cannot be resized by its client`);
  }

  async allocatedSize(): Promise<number> {
    // qemu-img info prints "disk size: unavailable" for NBD; there is nothing to ask
    return NaN;
  }

  async close(): Promise<void> {
    if (this.dead) return;
    try {
      if (!this.readOnly && this.flags & TF_SEND_FLUSH) await this.flush();
    } catch {
      // closing anyway; the write that needed the flush already reported
    }
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(CMD.DISC, 6);
    h.writeBigUInt64BE(this.nextCookie++, 8);
    await new Promise<void>((resolve) => {
      this.socket.end(h, () => resolve());
      setTimeout(resolve, 1000).unref();
    });
    this.dead = new BlockError('io', `${this.filename}: closed`);
    this.socket.destroy();
  }
}
