/**
 * One iSCSI session of one TCP connection, as libiscsi opens it for QEMU:
 * login (security stage with CHAP-MD5 or none, then operational negotiation),
 * then SCSI commands in the full feature phase with immediate data,
 * unsolicited Data-Out, R2T-driven Data-Out, Data-In, and the target's
 * NOP-In pings answered.
 *
 * Nothing the target sends is believed unchecked: every data segment is
 * bounded (MaxRecvDataSegmentLength in full feature phase, LOGIN_MAX_DATA
 * before), AHSs are bounded by the one-byte length field, digests are
 * verified when negotiated, Data-In and R2T must lie inside the command they
 * belong to, task tags must be ones we issued. A violation fails every pending
 * command with a BlockError and drops the connection; a silent target times
 * out. Memory: at most one data segment plus the socket's high water mark per
 * connection, besides the caller's own buffers.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { BlockError } from '../../errors.js';
import {
  ATTR_SIMPLE, BHS_LEN, CMD_READ, CMD_WRITE, DATA_IN_STATUS, decodeKeys, digestBytes, encodeKeys, FINAL, loginStatusText,
  newBhs, NO_TAG, OP, OPCODE_NAMES, pad4, parseBhs, printable, snLessOrEqual, STAGE, type Pdu, type TextKeys,
} from './pdu.js';
import { parseSense, senseText, STATUS, statusText, type Sense } from './scsi.js';
import { SocketReader } from '../socket-reader.js';

export const ISCSI_PORT = 3260;
/** data segments during login: RFC 7143's default MaxRecvDataSegmentLength */
export const LOGIN_MAX_DATA = 8192;
/** what we declare as our MaxRecvDataSegmentLength, and so the largest data segment we accept */
export const OUR_MAX_RECV = 262144;
export const DEFAULT_BURST = 262144;

export interface IscsiSessionOptions {
  host: string;
  port: number;
  target: string;
  initiatorName: string;
  user?: string;
  password?: string;
  /** what to offer for HeaderDigest, in order of preference */
  headerDigest: Array<'CRC32C' | 'None'>;
  /** per step and per command; 0 = no limit */
  timeoutMs: number;
  /** offer InitialR2T=Yes (default: No, as libiscsi) */
  initialR2T?: boolean;
  /** offer ImmediateData (default: Yes) */
  immediateData?: boolean;
  /** what the messages call the portal */
  where: string;
}

/** What the login settled; the session obeys it. */
export interface Negotiated {
  headerDigest: boolean;
  initialR2T: boolean;
  immediateData: boolean;
  firstBurst: number;
  maxBurst: number;
  /** the target's MaxRecvDataSegmentLength: the largest data segment we may send */
  sendMax: number;
  tsih: number;
  authMethod: string;
}

export interface ScsiResult {
  status: number;
  sense: Sense | null;
  /** bytes of Data-In actually received */
  received: number;
  residual: number;
}

interface Task {
  itt: number;
  lun: Buffer;
  cdb: Buffer;
  edtl: number;
  dataIn?: Buffer;
  dataOut?: Buffer;
  received: number;
  /** Data-In arrived with status: the task is done when its PDU is processed */
  timer: NodeJS.Timeout | null;
  resolve: (r: ScsiResult) => void;
  reject: (e: unknown) => void;
  /** a NOP-Out we sent, waiting for its NOP-In */
  ping?: boolean;
  logout?: boolean;
}

export function lunField(lun: number): Buffer {
  // SAM's single-level LUN: peripheral device addressing below 256, flat space above
  const b = Buffer.alloc(8);
  if (lun < 256) b[1] = lun;
  else b.writeUInt16BE(0x4000 | (lun & 0x3fff), 0);
  return b;
}

export class IscsiSession {
  private readonly reader: SocketReader;
  private cmdSN = 1;
  private expStatSN = 0;
  private maxCmdSN = 1;
  private nextItt = 1;
  private tasks = new Map<number, Task>();
  private waiting: Array<() => void> = [];
  private dead: BlockError | null = null;
  private digest = false;
  private loop: Promise<void> | null = null;
  neg!: Negotiated;
  private readonly isid = Buffer.concat([Buffer.from([0x80]), crypto.randomBytes(3), Buffer.from([0x00, 0x00])]);

  private constructor(
    private readonly socket: net.Socket,
    readonly opts: IscsiSessionOptions,
  ) {
    this.reader = new SocketReader(socket, `iSCSI target ${opts.where}`, 4 * 1024 * 1024);
  }

  static async open(opts: IscsiSessionOptions): Promise<IscsiSession> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: opts.host, port: opts.port });
      const timer = opts.timeoutMs > 0
        ? setTimeout(() => {
            s.destroy();
            reject(new BlockError('io', `iSCSI: Failed to connect to LUN : connecting to ${opts.where} timed out`));
          }, opts.timeoutMs)
        : null;
      s.once('connect', () => { if (timer) clearTimeout(timer); resolve(s); });
      s.once('error', (e: NodeJS.ErrnoException) => {
        if (timer) clearTimeout(timer);
        const why = e.code === 'ECONNREFUSED' ? 'Connection refused' : e.message;
        reject(new BlockError('io', `iSCSI: Failed to connect to LUN : Failed to connect to ${opts.where}: ${why}`, { cause: e }));
      });
    });
    socket.setNoDelay(true);
    const s = new IscsiSession(socket, opts);
    try {
      await s.login();
    } catch (e) {
      socket.destroy();
      throw e;
    }
    s.loop = s.receiveLoop();
    return s;
  }

  private bad(what: string): BlockError {
    return new BlockError('malformed', `iSCSI target ${this.opts.where}: ${what}`);
  }

  // ---------------------------------------------------------------- PDU I/O

  private send(bhs: Buffer, data?: Buffer): void {
    const parts: Buffer[] = [bhs];
    if (this.digest) parts.push(digestBytes(bhs));
    if (data && data.length) {
      parts.push(data);
      const p = pad4(data.length);
      if (p) parts.push(Buffer.alloc(p));
    }
    if (parts.length === 1) {
      this.socket.write(bhs);
      return;
    }
    // corked pieces leave in one writev: the data segment is never copied into a joined buffer
    this.socket.cork();
    for (const part of parts) this.socket.write(part);
    process.nextTick(() => this.socket.uncork());
  }

  /** One PDU from the target, bounded: `maxData` is the largest data segment we take. */
  private async readPdu(maxData: number, timeoutMs: number): Promise<Pdu> {
    const bhs = await this.reader.read(BHS_LEN, timeoutMs);
    const h = parseBhs(bhs);
    const t = this.opts.timeoutMs;
    const ahs = await this.reader.read(h.ahsLength, t);
    if (this.digest) {
      const d = await this.reader.read(4, t);
      if (!d.equals(digestBytes(bhs, ahs))) throw this.bad(`header digest mismatch on a ${OPCODE_NAMES[h.opcode] ?? `0x${h.opcode.toString(16)}`} PDU`);
    }
    if (h.dataLength > maxData) {
      throw this.bad(`a ${OPCODE_NAMES[h.opcode] ?? `0x${h.opcode.toString(16)}`} PDU carries a data segment of ${h.dataLength} bytes, beyond the ${maxData} (MaxRecvDataSegmentLength) it may send`);
    }
    // Data-In that fits its read goes straight into the read's buffer; anything else into a fresh one, for dispatch to judge
    const dest = h.opcode === OP.DATA_IN ? this.placement(h.itt, bhs.readUInt32BE(40), h.dataLength) : null;
    const data = dest ?? Buffer.allocUnsafe(h.dataLength);
    await this.reader.readInto(data, t);
    await this.reader.read(pad4(h.dataLength), t);
    return { bhs, opcode: h.opcode, immediate: h.immediate, flags: h.flags, ahs, data, itt: h.itt, placed: dest !== null };
  }

  private placement(itt: number, off: number, len: number): Buffer | null {
    const t = this.tasks.get(itt);
    if (!t?.dataIn || len === 0 || off !== t.received || off + len > t.edtl) return null;
    return t.dataIn.subarray(off, off + len);
  }

  /** StatSN / ExpCmdSN / MaxCmdSN of a target PDU (offsets 24, 28, 32). */
  private window(bhs: Buffer, advancesStat: boolean): void {
    if (advancesStat) this.expStatSN = (bhs.readUInt32BE(24) + 1) >>> 0;
    const exp = bhs.readUInt32BE(28);
    const max = bhs.readUInt32BE(32);
    // RFC 7143 4.2.2.1: a MaxCmdSN below ExpCmdSN - 1 is ignored
    if (snLessOrEqual((exp - 1) >>> 0, max)) this.maxCmdSN = max;
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  // ---------------------------------------------------------------- login

  private async login(): Promise<void> {
    const o = this.opts;
    const chap = !!(o.user && o.password);
    let csg: number = STAGE.SECURITY;
    let keys: TextKeys = [
      ['InitiatorName', o.initiatorName],
      ['SessionType', 'Normal'],
      ['TargetName', o.target],
      ['AuthMethod', chap ? 'CHAP,None' : 'None'],
    ];
    // a target that takes AuthMethod=None may move on at once; with CHAP on offer we wait for its choice
    let transit = !chap;
    let authMethod = 'None';
    let chapSent = false;
    let opSent = false;
    const offered: TextKeys = [
      ['HeaderDigest', o.headerDigest.join(',')],
      ['DataDigest', 'None'],
      ['InitialR2T', o.initialR2T ? 'Yes' : 'No'],
      ['ImmediateData', o.immediateData === false ? 'No' : 'Yes'],
      ['MaxBurstLength', String(DEFAULT_BURST)],
      ['FirstBurstLength', String(DEFAULT_BURST)],
      ['MaxRecvDataSegmentLength', String(OUR_MAX_RECV)],
      ['MaxConnections', '1'],
      ['DefaultTime2Wait', '2'],
      ['DefaultTime2Retain', '0'],
      ['IFMarker', 'No'],
      ['OFMarker', 'No'],
      ['ErrorRecoveryLevel', '0'],
      ['DataPDUInOrder', 'Yes'],
      ['DataSequenceInOrder', 'Yes'],
      ['MaxOutstandingR2T', '1'],
    ];
    const answers = new Map<string, string>();
    let tsih = 0;
    for (let round = 0; round < 16; round++) {
      const nsg = csg === STAGE.SECURITY ? STAGE.OPERATIONAL : STAGE.FULL_FEATURE;
      const data = encodeKeys(keys);
      const bhs = newBhs(OP.LOGIN_REQ, (transit ? FINAL : 0) | (csg << 2) | (transit ? nsg : 0), data.length, true);
      this.isid.copy(bhs, 8);
      bhs.writeUInt16BE(tsih, 14);
      bhs.writeUInt32BE(0, 16); // ITT
      bhs.writeUInt16BE(0, 20); // CID
      bhs.writeUInt32BE(this.cmdSN, 24);
      bhs.writeUInt32BE(this.expStatSN, 28);
      this.send(bhs, data);

      const r = await this.readPdu(LOGIN_MAX_DATA, o.timeoutMs);
      if (r.opcode === OP.REJECT) throw this.bad('the target rejected the login request');
      if (r.opcode !== OP.LOGIN_RSP) throw this.bad(`a ${OPCODE_NAMES[r.opcode] ?? `0x${r.opcode.toString(16)}`} PDU during login`);
      const cls = r.bhs[36]!;
      const detail = r.bhs[37]!;
      if (cls !== 0) {
        const code = cls === 2 && detail === 3 ? 'not-found' : 'io';
        throw new BlockError(code, `iSCSI: Failed to connect to LUN : Failed to log in to target. Status: ${loginStatusText(cls, detail)}(${(cls << 8) | detail})`,
          cls === 2 && (detail === 1 || detail === 2) ? { option: 'user' } : cls === 2 && detail === 3 ? { option: 'target', value: o.target } : {});
      }
      this.expStatSN = (r.bhs.readUInt32BE(24) + 1) >>> 0;
      this.maxCmdSN = r.bhs.readUInt32BE(32);
      tsih = r.bhs.readUInt16BE(14);
      const rt = (r.flags & FINAL) !== 0;
      const rcsg = (r.flags >> 2) & 3;
      const rnsg = r.flags & 3;
      if (r.flags & 0x40) throw new BlockError('unsupported', `iSCSI target ${o.where}: login responses split over several PDUs (C bit) are not supported by the reference`);
      if (rcsg !== csg) throw this.bad(`login response for stage ${rcsg} while in stage ${csg}`);
      const got = decodeKeys(r.data, (why) => this.bad(why));
      for (const [k, v] of got) answers.set(k, v);
      keys = [];

      if (csg === STAGE.SECURITY) {
        const am = got.get('AuthMethod');
        if (am !== undefined) {
          if (am === 'CHAP' && chap) authMethod = 'CHAP';
          else if (am === 'None') authMethod = 'None';
          else if (am === 'Reject' || am === 'NotUnderstood' || am === 'Irrelevant') {
            throw new BlockError('io', `iSCSI: Failed to connect to LUN : Failed to log in to target. the target refused AuthMethod=${chap ? 'CHAP,None' : 'None'}`, { option: 'user' });
          } else throw this.bad(`AuthMethod=${printable(am)}, which was not offered`);
        }
        if (authMethod === 'CHAP' && !chapSent) {
          if (!got.has('CHAP_A')) {
            keys = [['CHAP_A', '5']];
            transit = false;
            continue;
          }
          keys = this.chapResponse(got);
          chapSent = true;
          transit = true;
          continue;
        }
        if (rt && rnsg === STAGE.FULL_FEATURE) {
          // the target skipped the operational stage: every key keeps its default
          this.neg = this.settle(new Map(), o, tsih, authMethod);
          return;
        }
        if (rt && rnsg === STAGE.OPERATIONAL) {
          csg = STAGE.OPERATIONAL;
          keys = offered;
          opSent = true;
          transit = true;
          continue;
        }
        transit = true;
        continue;
      }
      // operational stage
      if (!opSent) {
        keys = offered;
        opSent = true;
      }
      if (rt && rnsg === STAGE.FULL_FEATURE) {
        this.neg = this.settle(answers, o, tsih, authMethod);
        this.digest = this.neg.headerDigest;
        return;
      }
      transit = true;
    }
    throw this.bad('login did not reach the full feature phase within 16 exchanges');
  }

  private chapResponse(got: Map<string, string>): TextKeys {
    const a = got.get('CHAP_A');
    if (a !== '5') throw new BlockError('unsupported', `iSCSI target ${this.opts.where}: CHAP algorithm ${printable(a ?? '')} (only 5, MD5, is supported)`);
    const idText = got.get('CHAP_I');
    const challenge = got.get('CHAP_C');
    if (idText === undefined || !/^[0-9]{1,3}$/.test(idText) || Number(idText) > 255) throw this.bad(`CHAP_I=${printable(idText ?? '(missing)')} is not an identifier from 0 to 255`);
    if (challenge === undefined) throw this.bad('CHAP without CHAP_C');
    const c = decodeBinary(challenge);
    if (!c || c.length === 0 || c.length > 1024) throw this.bad(`CHAP_C is not a hex or base64 value of 1 to 1024 bytes`);
    const md5 = crypto.createHash('md5');
    md5.update(Buffer.from([Number(idText)]));
    md5.update(Buffer.from(this.opts.password!, 'utf8'));
    md5.update(c);
    return [['CHAP_N', this.opts.user!], ['CHAP_R', `0x${md5.digest('hex')}`]];
  }

  private settle(a: Map<string, string>, o: IscsiSessionOptions, tsih: number, authMethod: string): Negotiated {
    const num = (key: string, def: number, lo: number, hi: number): number => {
      const v = a.get(key);
      if (v === undefined) return def;
      if (!/^[0-9]{1,8}$/.test(v) || Number(v) < lo || Number(v) > hi) throw this.bad(`${key}=${printable(v)} is not a number from ${lo} to ${hi}`);
      return Number(v);
    };
    const yesNo = (key: string, def: boolean): boolean => {
      const v = a.get(key);
      if (v === undefined) return def;
      if (v !== 'Yes' && v !== 'No') throw this.bad(`${key}=${printable(v)} is neither Yes nor No`);
      return v === 'Yes';
    };
    const hd = a.get('HeaderDigest') ?? 'None';
    if (!(o.headerDigest as string[]).includes(hd)) throw this.bad(`HeaderDigest=${printable(hd)}, which was not offered (${o.headerDigest.join(',')})`);
    const dd = a.get('DataDigest') ?? 'None';
    if (dd !== 'None') throw this.bad(`DataDigest=${printable(dd)}, which was not offered (None)`);
    // boolean results: InitialR2T is OR, ImmediateData is AND; lengths are the minimum of both offers
    const initialR2T = (o.initialR2T ?? false) || yesNo('InitialR2T', true);
    const immediateData = (o.immediateData ?? true) && yesNo('ImmediateData', true);
    const maxBurst = Math.min(DEFAULT_BURST, num('MaxBurstLength', 262144, 512, 0xffffff));
    const firstBurst = Math.min(DEFAULT_BURST, maxBurst, num('FirstBurstLength', 65536, 512, 0xffffff));
    const sendMax = num('MaxRecvDataSegmentLength', 8192, 512, 0xffffff);
    return { headerDigest: hd === 'CRC32C', initialR2T, immediateData, firstBurst, maxBurst, sendMax, tsih, authMethod };
  }

  // ---------------------------------------------------------------- full feature phase

  private fail(e: BlockError): void {
    if (this.dead) return;
    this.dead = e;
    for (const t of this.tasks.values()) {
      if (t.timer) clearTimeout(t.timer);
      t.reject(e);
    }
    this.tasks.clear();
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
    this.socket.destroy();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for (;;) {
        const p = await this.readPdu(OUR_MAX_RECV, 0);
        this.dispatch(p);
      }
    } catch (e) {
      this.fail(e instanceof BlockError ? e : new BlockError('io', `iSCSI target ${this.opts.where}: ${(e as Error).message}`, { cause: e }));
    }
  }

  private task(itt: number, what: string): Task {
    const t = this.tasks.get(itt);
    if (!t) throw this.bad(`${what} for task tag 0x${itt.toString(16)}, which no command carries`);
    return t;
  }

  private done(t: Task, r: ScsiResult): void {
    this.tasks.delete(t.itt);
    if (t.timer) clearTimeout(t.timer);
    t.resolve(r);
  }

  private dispatch(p: Pdu): void {
    switch (p.opcode) {
      case OP.NOP_IN: {
        const ttt = p.bhs.readUInt32BE(20);
        if (p.itt !== NO_TAG) {
          const t = this.task(p.itt, 'a NOP-In');
          if (!t.ping) throw this.bad(`a NOP-In for task tag 0x${p.itt.toString(16)}, which is a SCSI command`);
          this.window(p.bhs, true);
          this.done(t, { status: 0, sense: null, received: 0, residual: 0 });
          return;
        }
        this.window(p.bhs, false);
        if (ttt !== NO_TAG) {
          // the target pings us: answer with its tag, immediately, echoing the LUN and the data
          const bhs = newBhs(OP.NOP_OUT, FINAL, p.data.length, true);
          p.bhs.copy(bhs, 8, 8, 16);
          bhs.writeUInt32BE(NO_TAG, 16);
          bhs.writeUInt32BE(ttt, 20);
          bhs.writeUInt32BE(this.cmdSN, 24);
          bhs.writeUInt32BE(this.expStatSN, 28);
          this.send(bhs, p.data);
        }
        return;
      }
      case OP.DATA_IN: {
        const t = this.task(p.itt, 'Data-In');
        if (!t.dataIn) throw this.bad('Data-In for a command that reads nothing');
        const off = p.bhs.readUInt32BE(40);
        if (off + p.data.length > t.edtl) throw this.bad(`Data-In of ${p.data.length} bytes at offset ${off} overruns the ${t.edtl} bytes asked for`);
        // DataPDUInOrder=Yes was negotiated: each Data-In continues where the last ended, so no byte is left unwritten
        if (off !== t.received) throw this.bad(`Data-In at offset ${off} where ${t.received} was next (DataPDUInOrder=Yes)`);
        if (!p.placed) p.data.copy(t.dataIn, off);
        t.received += p.data.length;
        if (p.flags & DATA_IN_STATUS) {
          if (!(p.flags & FINAL)) throw this.bad('Data-In with status but without the final bit');
          this.window(p.bhs, true);
          this.done(t, { status: p.bhs[3]!, sense: null, received: t.received, residual: p.bhs.readUInt32BE(44) });
        } else this.window(p.bhs, false);
        return;
      }
      case OP.SCSI_RSP: {
        const t = this.task(p.itt, 'a SCSI Response');
        this.window(p.bhs, true);
        if (p.bhs[2] !== 0) {
          this.tasks.delete(t.itt);
          if (t.timer) clearTimeout(t.timer);
          t.reject(new BlockError('io', `iSCSI target ${this.opts.where}: command 0x${t.cdb[0]!.toString(16)} failed in the target (iSCSI response 0x${p.bhs[2]!.toString(16)})`));
          return;
        }
        let sense: Sense | null = null;
        if (p.data.length >= 2) {
          const n = p.data.readUInt16BE(0);
          if (2 + n > p.data.length) throw this.bad('sense data overruns its data segment');
          sense = parseSense(p.data.subarray(2, 2 + n));
        }
        this.done(t, { status: p.bhs[3]!, sense, received: t.received, residual: p.bhs.readUInt32BE(44) });
        return;
      }
      case OP.R2T: {
        const t = this.task(p.itt, 'an R2T');
        if (!t.dataOut) throw this.bad('an R2T for a command that writes nothing');
        this.window(p.bhs, false);
        const ttt = p.bhs.readUInt32BE(20);
        const off = p.bhs.readUInt32BE(40);
        const len = p.bhs.readUInt32BE(44);
        if (len === 0 || off + len > t.dataOut.length) throw this.bad(`an R2T for ${len} bytes at offset ${off} of a ${t.dataOut.length}-byte write`);
        if (len > this.neg.maxBurst) throw this.bad(`an R2T for ${len} bytes, beyond MaxBurstLength ${this.neg.maxBurst}`);
        this.dataOut(t, ttt, off, len);
        return;
      }
      case OP.LOGOUT_RSP: {
        const t = this.task(p.itt, 'a Logout Response');
        this.window(p.bhs, true);
        this.done(t, { status: p.bhs[2]!, sense: null, received: 0, residual: 0 });
        return;
      }
      case OP.ASYNC: {
        this.window(p.bhs, false);
        const event = p.bhs[36]!;
        if (event === 1 || event === 2 || event === 3) {
          throw new BlockError('io', `iSCSI target ${this.opts.where} ends the session (asynchronous event ${event})`);
        }
        return; // SCSI async events and vendor events need no answer
      }
      case OP.REJECT: {
        const reason = p.bhs[2]!;
        if (p.data.length >= BHS_LEN) {
          const itt = p.data.readUInt32BE(16);
          const t = this.tasks.get(itt);
          if (t) {
            this.tasks.delete(itt);
            if (t.timer) clearTimeout(t.timer);
            t.reject(new BlockError('io', `iSCSI target ${this.opts.where} rejected a PDU (reason 0x${reason.toString(16)})`));
            return;
          }
        }
        throw new BlockError('io', `iSCSI target ${this.opts.where} rejected a PDU (reason 0x${reason.toString(16)})`);
      }
      default:
        throw this.bad(`unexpected opcode 0x${p.opcode.toString(16)}${OPCODE_NAMES[p.opcode] ? ` (${OPCODE_NAMES[p.opcode]})` : ''} in the full feature phase`);
    }
  }

  /** Data-Out PDUs for [off, off+len) of the task's data, none larger than the target takes. */
  private dataOut(t: Task, ttt: number, off: number, len: number): void {
    let sn = 0;
    for (let at = off; at < off + len; at += this.neg.sendMax) {
      const n = Math.min(this.neg.sendMax, off + len - at);
      const last = at + n >= off + len;
      const bhs = newBhs(OP.DATA_OUT, last ? FINAL : 0, n);
      t.lun.copy(bhs, 8);
      bhs.writeUInt32BE(t.itt, 16);
      bhs.writeUInt32BE(ttt, 20);
      bhs.writeUInt32BE(this.expStatSN, 28);
      bhs.writeUInt32BE(sn++, 36);
      bhs.writeUInt32BE(at, 40);
      this.send(bhs, t.dataOut!.subarray(at, at + n));
    }
  }

  private allocItt(): number {
    for (;;) {
      const itt = this.nextItt;
      this.nextItt = (this.nextItt + 1) >>> 0;
      if (this.nextItt === NO_TAG) this.nextItt = 1;
      if (!this.tasks.has(itt)) return itt;
    }
  }

  /** Wait until CmdSN fits the target's window (MaxCmdSN). */
  private async slot(): Promise<void> {
    while (!this.dead && !snLessOrEqual(this.cmdSN, this.maxCmdSN)) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
      });
    }
    if (this.dead) throw this.dead;
  }

  private arm(t: Task, what: string): void {
    if (this.opts.timeoutMs > 0) {
      t.timer = setTimeout(() => this.fail(new BlockError('io', `iSCSI target ${this.opts.where}: no answer to ${what} within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    }
  }

  /** One SCSI command: `read` bytes come back in a fresh buffer (or in `into`), `write` bytes go out. */
  async command(lun: number, cdb: Buffer, dir: { read?: number; into?: Buffer; write?: Buffer } = {}): Promise<ScsiResult & { data?: Buffer }> {
    if (this.dead) throw this.dead;
    await this.slot();
    const itt = this.allocItt();
    // `into`: Data-In lands straight in the caller's buffer (reads of guest data), else in a fresh zeroed one
    const dataIn = dir.into ?? (dir.read !== undefined ? Buffer.alloc(dir.read) : undefined);
    const edtl = dataIn?.length ?? dir.write?.length ?? 0;
    const lunBuf = lunField(lun);
    const result = new Promise<ScsiResult>((resolve, reject) => {
      const t: Task = { itt, lun: lunBuf, cdb, edtl, dataIn, dataOut: dir.write, received: 0, timer: null, resolve, reject };
      this.tasks.set(itt, t);
      this.arm(t, `SCSI command 0x${cdb[0]!.toString(16)}`);
      const n = this.neg;
      let immediate = 0;
      let unsolicited = 0;
      if (dir.write && dir.write.length) {
        const first = Math.min(n.firstBurst, dir.write.length);
        if (n.immediateData) immediate = Math.min(first, n.sendMax);
        if (!n.initialR2T) unsolicited = first - immediate;
      }
      const bhs = newBhs(OP.SCSI_CMD, (unsolicited ? 0 : FINAL) | (dataIn ? CMD_READ : 0) | (dir.write ? CMD_WRITE : 0) | ATTR_SIMPLE, immediate);
      lunBuf.copy(bhs, 8);
      bhs.writeUInt32BE(itt, 16);
      bhs.writeUInt32BE(edtl, 20);
      bhs.writeUInt32BE(this.cmdSN, 24);
      bhs.writeUInt32BE(this.expStatSN, 28);
      cdb.copy(bhs, 32);
      this.cmdSN = (this.cmdSN + 1) >>> 0;
      this.send(bhs, immediate ? dir.write!.subarray(0, immediate) : undefined);
      if (unsolicited) this.dataOut(t, NO_TAG, immediate, unsolicited);
    });
    const r = await result;
    return { ...r, data: dataIn };
  }

  /** A NOP-Out ping the target must answer (keeps idle sessions honest; used by tests). */
  async ping(): Promise<void> {
    if (this.dead) throw this.dead;
    const itt = this.allocItt();
    await new Promise<ScsiResult>((resolve, reject) => {
      const t: Task = { itt, lun: Buffer.alloc(8), cdb: Buffer.alloc(1), edtl: 0, received: 0, timer: null, resolve, reject, ping: true };
      this.tasks.set(itt, t);
      this.arm(t, 'NOP-Out');
      const bhs = newBhs(OP.NOP_OUT, FINAL, 0, true);
      bhs.writeUInt32BE(itt, 16);
      bhs.writeUInt32BE(NO_TAG, 20);
      bhs.writeUInt32BE(this.cmdSN, 24);
      bhs.writeUInt32BE(this.expStatSN, 28);
      this.send(bhs);
    });
  }

  get closed(): boolean {
    return this.dead !== null;
  }

  /** Logout (close the session), then drop the connection; bounded by one second. */
  async close(): Promise<void> {
    if (this.dead) return;
    const itt = this.allocItt();
    const answered = new Promise<ScsiResult>((resolve, reject) => {
      const t: Task = { itt, lun: Buffer.alloc(8), cdb: Buffer.alloc(1), edtl: 0, received: 0, timer: null, resolve, reject, logout: true };
      this.tasks.set(itt, t);
      const bhs = newBhs(OP.LOGOUT_REQ, FINAL | 0, 0, true);
      bhs.writeUInt32BE(itt, 16);
      bhs.writeUInt32BE(this.cmdSN, 24);
      bhs.writeUInt32BE(this.expStatSN, 28);
      this.send(bhs);
    });
    await Promise.race([answered.catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.fail(new BlockError('io', `iSCSI session with ${this.opts.where} closed`));
    await this.loop?.catch(() => undefined);
  }
}

/** CHAP binary values: 0x-hex or 0b-base64 (RFC 7143 6.1). */
export function decodeBinary(v: string): Buffer | null {
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) {
    const hex = v.slice(2);
    return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  }
  if (/^0[bB][A-Za-z0-9+/]+=*$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return null;
}

/** A SCSI result that is not GOOD as an error, with the sense data spelled out. */
export function checkStatus(r: ScsiResult, what: string): void {
  if (r.status === STATUS.GOOD) return;
  const why = r.sense ? senseText(r.sense) : statusText(r.status);
  throw new BlockError('io', `${what}: ${why}`);
}
