/**
 * The NBD server behind `qbc nbd`: exports block nodes the reference opened,
 * as qemu-nbd does — fixed newstyle only, NBD_OPT_GO/INFO/EXPORT_NAME/LIST,
 * structured replies, the base:allocation and qemu:allocation-depth meta
 * contexts, and the commands READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, CACHE,
 * BLOCK_STATUS and DISC.
 *
 * A client cannot hurt the server or its other clients: every length is
 * checked before anything is allocated (at most MAX_PAYLOAD per request, at
 * most MAX_OPTION_DATA per option), requests outside the export get EINVAL,
 * a client that breaks framing or stalls mid-handshake is dropped alone.
 * Requests of one connection are served in order; connections run side by side.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { BlockError } from '../../errors.js';
import type { BlockNode } from '../../node.js';
import {
  CMD, CMD_FLAG_DF, CMD_FLAG_FUA, CMD_FLAG_NO_HOLE, CMD_FLAG_REQ_ONE, CONTEXT_ALLOCATION_DEPTH, CONTEXT_BASE_ALLOCATION, ERR,
  FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT, INFO, MAX_OPTION_DATA,
  MAX_PAYLOAD, MAX_STRING, NBDMAGIC, OPT, OPTION_REPLY_MAGIC, REP, REPLY_FLAG_DONE, REPLY_TYPE, REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC, STATE_HOLE, STATE_ZERO, STRUCTURED_REPLY_MAGIC, TF_CAN_MULTI_CONN, TF_HAS_FLAGS, TF_READ_ONLY,
  TF_SEND_DF, TF_SEND_FLUSH, TF_SEND_FUA, TF_SEND_TRIM, TF_SEND_WRITE_ZEROES, TF_SEND_CACHE,
} from './constants.js';
import { putU64, u64 } from './wire.js';
import { SocketReader } from '../socket-reader.js';

export interface NbdExport {
  name: string;
  description?: string;
  node: BlockNode;
}

export interface NbdServerOptions {
  exports: NbdExport[];
  readOnly?: boolean;
  /** clients served at once (qemu-nbd --shared); 0 is no limit. Default 1. */
  shared?: number;
  /** keep serving after the last client leaves (qemu-nbd --persistent) */
  persistent?: boolean;
  /** a client must finish its handshake within this (default 10 s) */
  handshakeTimeoutMs?: number;
  log?: (line: string) => void;
}

const CONTEXT_IDS: Record<string, number> = { [CONTEXT_BASE_ALLOCATION]: 1, [CONTEXT_ALLOCATION_DEPTH]: 2 };

/** Thrown inside a connection to end it; never escapes to the server. */
class Drop extends Error {}

export class NbdServer {
  private readonly server: net.Server;
  private active = new Set<net.Socket>();
  private waiting: net.Socket[] = [];
  private served = 0;
  private closing = false;
  /** resolves when the server stops (last client gone without --persistent, or close()) */
  readonly finished: Promise<void>;
  private finish!: () => void;

  constructor(private readonly opts: NbdServerOptions) {
    if (opts.exports.length === 0) throw new BlockError('invalid-option', 'nbd server: no export');
    this.finished = new Promise((r) => { this.finish = r; });
    this.server = net.createServer((s) => this.admit(s));
  }

  /** Listen on a TCP address (loopback by default) or a unix socket path. */
  listen(where: { host?: string; port: number } | { path: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) => reject(new BlockError('io', `Failed to listen: ${e.message}`, { cause: e })));
      if ('path' in where) {
        fs.rmSync(where.path, { force: true });
        this.server.listen(where.path, () => resolve());
      } else {
        this.server.listen(where.port, where.host ?? '127.0.0.1', () => resolve());
      }
    });
  }

  address(): net.AddressInfo | string | null {
    return this.server.address();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of [...this.active, ...this.waiting]) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    this.finish();
  }

  private get limit(): number {
    return this.opts.shared ?? 1;
  }

  /** Beyond --shared, a client waits (as it would in qemu-nbd's listen backlog) until one leaves. */
  private admit(s: net.Socket): void {
    if (this.closing) return void s.destroy();
    if (this.limit > 0 && this.active.size >= this.limit) {
      this.waiting.push(s);
      s.once('close', () => { this.waiting = this.waiting.filter((w) => w !== s); });
      return;
    }
    this.active.add(s);
    this.served++;
    s.setNoDelay(true);
    void this.serve(s).finally(() => {
      this.active.delete(s);
      s.destroy();
      const next = this.waiting.shift();
      if (next) this.admit(next);
      else if (!this.opts.persistent && this.active.size === 0 && this.served > 0) void this.close();
    });
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  private async serve(s: net.Socket): Promise<void> {
    const reader = new SocketReader(s, 'nbd client', MAX_PAYLOAD + 4096);
    try {
      const session = await this.handshake(s, reader);
      if (session) await this.transmission(s, reader, session);
    } catch (e) {
      if (!(e instanceof Drop) && !(e instanceof BlockError)) this.log(`nbd: client dropped: ${(e as Error).message}`);
      else if (e instanceof Drop) this.log(`nbd: client dropped: ${e.message}`);
    }
  }

  // ---------------------------------------------------------------- handshake

  private async handshake(s: net.Socket, r: SocketReader): Promise<Session | null> {
    const t = this.opts.handshakeTimeoutMs ?? 10_000;
    const hello = Buffer.alloc(18);
    hello.writeBigUInt64BE(NBDMAGIC, 0);
    hello.writeBigUInt64BE(IHAVEOPT, 8);
    hello.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
    s.write(hello);
    const cflags = (await r.read(4, t)).readUInt32BE(0);
    if (cflags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) throw new Drop(`unknown client flags 0x${cflags.toString(16)}`);
    const noZeroes = (cflags & FLAG_C_NO_ZEROES) !== 0;
    let structured = false;
    let contexts: number[] = [];
    for (;;) {
      const h = await r.read(16, t);
      if (h.readBigUInt64BE(0) !== IHAVEOPT) throw new Drop('bad option magic');
      const opt = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      if (len > MAX_OPTION_DATA) throw new Drop(`option ${opt} with ${len} bytes of data`);
      const data = await r.read(len, t);
      const reply = (type: number, payload: Buffer = Buffer.alloc(0)) => {
        const b = Buffer.alloc(20 + payload.length);
        b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
        b.writeUInt32BE(opt, 8);
        b.writeUInt32BE(type, 12);
        b.writeUInt32BE(payload.length, 16);
        payload.copy(b, 20);
        s.write(b);
      };
      const errorText = (type: number, text: string) => reply(type, Buffer.from(text));
      switch (opt) {
        case OPT.EXPORT_NAME: {
          const ex = this.find(data.toString('utf8'));
          if (!ex) throw new Drop(`export '${data.toString('utf8')}' not present`); // the protocol has no error reply here
          const b = Buffer.alloc(noZeroes ? 10 : 134);
          putU64(b, 0, ex.node.size());
          b.writeUInt16BE(this.flagsFor(ex), 8);
          s.write(b);
          return { ex, structured, contexts };
        }
        case OPT.ABORT:
          reply(REP.ACK);
          s.end();
          return null;
        case OPT.LIST:
          if (len !== 0) { errorText(REP.ERR_INVALID, 'NBD_OPT_LIST takes no data'); break; }
          for (const ex of this.opts.exports) {
            const name = Buffer.from(ex.name);
            const desc = Buffer.from(ex.description ?? '');
            const b = Buffer.alloc(4 + name.length + desc.length);
            b.writeUInt32BE(name.length, 0);
            name.copy(b, 4);
            desc.copy(b, 4 + name.length);
            reply(REP.SERVER, b);
          }
          reply(REP.ACK);
          break;
        case OPT.STRUCTURED_REPLY:
          if (len !== 0) { errorText(REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data'); break; }
          structured = true;
          reply(REP.ACK);
          break;
        case OPT.INFO:
        case OPT.GO: {
          const parsed = parseGo(data);
          if (typeof parsed === 'string') { errorText(REP.ERR_INVALID, parsed); break; }
          const ex = this.find(parsed.name);
          if (!ex) { errorText(REP.ERR_UNKNOWN, `export '${parsed.name}' not present`); break; }
          const info = Buffer.alloc(12);
          info.writeUInt16BE(INFO.EXPORT, 0);
          putU64(info, 2, ex.node.size());
          info.writeUInt16BE(this.flagsFor(ex), 10);
          reply(REP.INFO, info);
          if (parsed.requests.includes(INFO.NAME)) reply(REP.INFO, Buffer.concat([u16(INFO.NAME), Buffer.from(ex.name)]));
          if (parsed.requests.includes(INFO.DESCRIPTION) && ex.description) reply(REP.INFO, Buffer.concat([u16(INFO.DESCRIPTION), Buffer.from(ex.description)]));
          if (parsed.requests.includes(INFO.BLOCK_SIZE)) {
            const b = Buffer.alloc(14);
            b.writeUInt16BE(INFO.BLOCK_SIZE, 0);
            b.writeUInt32BE(1, 2);
            b.writeUInt32BE(4096, 6);
            b.writeUInt32BE(MAX_PAYLOAD, 10);
            reply(REP.INFO, b);
          }
          reply(REP.ACK);
          if (opt === OPT.GO) return { ex, structured, contexts };
          break;
        }
        case OPT.LIST_META_CONTEXT:
        case OPT.SET_META_CONTEXT: {
          if (!structured) { errorText(REP.ERR_INVALID, 'meta contexts need structured replies first'); break; }
          const parsed = parseMeta(data);
          if (typeof parsed === 'string') { errorText(REP.ERR_INVALID, parsed); break; }
          if (!this.find(parsed.name)) { errorText(REP.ERR_UNKNOWN, `export '${parsed.name}' not present`); break; }
          const chosen = pickContexts(parsed.queries, opt === OPT.LIST_META_CONTEXT);
          for (const name of chosen) {
            const b = Buffer.alloc(4 + Buffer.byteLength(name));
            b.writeUInt32BE(CONTEXT_IDS[name], 0);
            b.write(name, 4);
            reply(REP.META_CONTEXT, b);
          }
          if (opt === OPT.SET_META_CONTEXT) contexts = chosen.map((n) => CONTEXT_IDS[n]);
          reply(REP.ACK);
          break;
        }
        default:
          errorText(REP.ERR_UNSUP, `option ${opt} not supported`);
      }
    }
  }

  private find(name: string): NbdExport | undefined {
    return this.opts.exports.find((e) => e.name === name);
  }

  private flagsFor(ex: NbdExport): number {
    const ro = this.opts.readOnly || ex.node.readOnly;
    let f = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_DF | TF_SEND_CACHE;
    if (ro) f |= TF_READ_ONLY | TF_CAN_MULTI_CONN;
    else f |= TF_SEND_TRIM | TF_SEND_WRITE_ZEROES;
    return f;
  }

  // ---------------------------------------------------------------- transmission

  private async transmission(s: net.Socket, r: SocketReader, session: Session): Promise<void> {
    const { ex } = session;
    const node = ex.node;
    const ro = this.opts.readOnly || node.readOnly;
    for (;;) {
      const h = await r.read(28, 0);
      if (h.readUInt32BE(0) !== REQUEST_MAGIC) throw new Drop('bad request magic');
      const flags = h.readUInt16BE(4);
      const type = h.readUInt16BE(6);
      const cookie = h.readBigUInt64BE(8);
      const offset = u64(h, 16);
      const length = h.readUInt32BE(24);
      const fail = (errno: number, msg: string) => this.replyError(s, session, cookie, errno, msg);
      if (type === CMD.DISC) return;
      let payload: Buffer | null = null;
      if (type === CMD.WRITE) {
        // the payload follows whatever we think of the request; too big to skip safely: drop the client
        if (length > MAX_PAYLOAD) throw new Drop(`write of ${length} bytes (at most ${MAX_PAYLOAD})`);
        payload = await r.read(length, 30_000);
      }
      const inRange = Number.isSafeInteger(offset) && offset + length <= node.size();
      try {
        switch (type) {
          case CMD.READ: {
            if (length > MAX_PAYLOAD) { fail(ERR.EINVAL, `read of ${length} bytes (at most ${MAX_PAYLOAD})`); break; }
            if (!inRange) { fail(ERR.EINVAL, `read ${offset}+${length} beyond the export size ${node.size()}`); break; }
            const data = await node.read(offset, length);
            if (session.structured) {
              const head = Buffer.alloc(28);
              writeChunkHeader(head, REPLY_FLAG_DONE, REPLY_TYPE.OFFSET_DATA, cookie, 8 + data.length);
              putU64(head, 20, offset);
              s.write(head);
              s.write(data);
            } else {
              const head = Buffer.alloc(16);
              head.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
              head.writeBigUInt64BE(cookie, 8);
              s.write(head);
              s.write(data);
            }
            void (flags & CMD_FLAG_DF); // one chunk per read: never fragmented
            break;
          }
          case CMD.WRITE:
            if (ro) { fail(ERR.EPERM, 'export is read-only'); break; }
            if (!inRange) { fail(ERR.ENOSPC, `write ${offset}+${length} beyond the export size ${node.size()}`); break; }
            await node.write(offset, payload!);
            if (flags & CMD_FLAG_FUA) await node.flush();
            this.ok(s, session, cookie);
            break;
          case CMD.FLUSH:
            await node.flush();
            this.ok(s, session, cookie);
            break;
          case CMD.TRIM:
          case CMD.WRITE_ZEROES:
            if (ro) { fail(ERR.EPERM, 'export is read-only'); break; }
            if (!inRange) { fail(ERR.ENOSPC, `request ${offset}+${length} beyond the export size ${node.size()}`); break; }
            if (type === CMD.TRIM) await node.discard(offset, length);
            else await node.writeZeroes(offset, length, { unmap: !(flags & CMD_FLAG_NO_HOLE) });
            if (flags & CMD_FLAG_FUA) await node.flush();
            this.ok(s, session, cookie);
            break;
          case CMD.CACHE:
            if (!inRange) { fail(ERR.EINVAL, `cache ${offset}+${length} beyond the export size`); break; }
            this.ok(s, session, cookie);
            break;
          case CMD.BLOCK_STATUS:
            if (!session.structured || session.contexts.length === 0) { fail(ERR.EINVAL, 'no meta context negotiated'); break; }
            if (length === 0 || !inRange) { fail(ERR.EINVAL, `block status ${offset}+${length} outside the export`); break; }
            await this.blockStatus(s, session, cookie, offset, length, (flags & CMD_FLAG_REQ_ONE) !== 0);
            break;
          default:
            fail(ERR.EINVAL, `unknown command ${type}`);
        }
      } catch (e) {
        const code = e instanceof BlockError ? e.code : 'io';
        fail(code === 'read-only' ? ERR.EPERM : code === 'out-of-range' ? ERR.EINVAL : ERR.EIO, (e as Error).message);
      }
    }
  }

  private ok(s: net.Socket, session: Session, cookie: bigint): void {
    if (session.structured) {
      const b = Buffer.alloc(20);
      writeChunkHeader(b, REPLY_FLAG_DONE, REPLY_TYPE.NONE, cookie, 0);
      s.write(b);
    } else {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
      b.writeBigUInt64BE(cookie, 8);
      s.write(b);
    }
  }

  private replyError(s: net.Socket, session: Session, cookie: bigint, errno: number, msg: string): void {
    if (session.structured) {
      const m = Buffer.from(msg.slice(0, 1024));
      const b = Buffer.alloc(20 + 6 + m.length);
      writeChunkHeader(b, REPLY_FLAG_DONE, REPLY_TYPE.ERROR, cookie, 6 + m.length);
      b.writeUInt32BE(errno, 20);
      b.writeUInt16BE(m.length, 24);
      m.copy(b, 26);
      s.write(b);
    } else {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
      b.writeUInt32BE(errno, 4);
      b.writeBigUInt64BE(cookie, 8);
      s.write(b);
    }
  }

  private async blockStatus(s: net.Socket, session: Session, cookie: bigint, offset: number, length: number, one: boolean): Promise<void> {
    const node = session.ex.node;
    // extents as the node reports them, at most 256 per reply (a bound on the reply, not on correctness)
    const extents: Array<{ length: number; data: boolean; zero: boolean; present: boolean; depth: number }> = [];
    for (let at = offset; at < offset + length && extents.length < (one ? 1 : 256); ) {
      const st = await node.blockStatus(at, offset + length - at);
      const n = Math.max(1, Math.min(st.length, offset + length - at));
      extents.push({ length: n, data: st.data, zero: st.zero, present: st.present, depth: st.depth });
      at += n;
    }
    session.contexts.forEach((id, i) => {
      const desc = extents.map((e) => ({
        length: e.length,
        flags: id === CONTEXT_IDS[CONTEXT_BASE_ALLOCATION] ? (e.data ? 0 : STATE_HOLE) | (e.zero ? STATE_ZERO : 0) : e.present ? e.depth + 1 : 0,
      }));
      const b = Buffer.alloc(20 + 4 + desc.length * 8);
      const last = i === session.contexts.length - 1;
      writeChunkHeader(b, last ? REPLY_FLAG_DONE : 0, REPLY_TYPE.BLOCK_STATUS, cookie, 4 + desc.length * 8);
      b.writeUInt32BE(id, 20);
      desc.forEach((d, k) => {
        b.writeUInt32BE(d.length, 24 + k * 8);
        b.writeUInt32BE(d.flags, 28 + k * 8);
      });
      s.write(b);
    });
  }
}

interface Session {
  ex: NbdExport;
  structured: boolean;
  contexts: number[];
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function writeChunkHeader(b: Buffer, flags: number, type: number, cookie: bigint, length: number): void {
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeUInt32BE(length, 16);
}

/** NBD_OPT_GO / NBD_OPT_INFO data: name length, name, request count, requests; or what is wrong with it. */
function parseGo(d: Buffer): { name: string; requests: number[] } | string {
  if (d.length < 6) return 'option data too short';
  const n = d.readUInt32BE(0);
  if (n > MAX_STRING || 4 + n + 2 > d.length) return 'export name length overruns the option';
  const count = d.readUInt16BE(4 + n);
  if (4 + n + 2 + count * 2 !== d.length) return 'information request count does not match the option length';
  const requests: number[] = [];
  for (let i = 0; i < count; i++) requests.push(d.readUInt16BE(6 + n + i * 2));
  return { name: d.subarray(4, 4 + n).toString('utf8'), requests };
}

function parseMeta(d: Buffer): { name: string; queries: string[] } | string {
  if (d.length < 8) return 'option data too short';
  const n = d.readUInt32BE(0);
  if (n > MAX_STRING || 4 + n + 4 > d.length) return 'export name length overruns the option';
  const count = d.readUInt32BE(4 + n);
  if (count > 64) return `${count} queries (at most 64)`;
  const queries: string[] = [];
  let at = 8 + n;
  for (let i = 0; i < count; i++) {
    if (at + 4 > d.length) return 'query overruns the option';
    const len = d.readUInt32BE(at);
    if (len > MAX_STRING || at + 4 + len > d.length) return 'query length overruns the option';
    queries.push(d.subarray(at + 4, at + 4 + len).toString('utf8'));
    at += 4 + len;
  }
  if (at !== d.length) return 'trailing bytes after the queries';
  return { name: d.subarray(4, 4 + n).toString('utf8'), queries };
}

/** Which of our contexts the queries select (LIST with no query, or a namespace query "base:", lists all of it). */
function pickContexts(queries: string[], listing: boolean): string[] {
  const ours = Object.keys(CONTEXT_IDS);
  if (listing && queries.length === 0) return ours;
  const out: string[] = [];
  for (const q of queries) {
    for (const c of ours) {
      const hit = q === c || (listing && q.endsWith(':') && c.startsWith(q));
      if (hit && !out.includes(c)) out.push(c);
    }
  }
  return out;
}
