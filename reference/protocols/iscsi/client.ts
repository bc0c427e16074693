/**
 * The iSCSI protocol node: one LUN of one target, reached through one session
 * (session.ts), opened the way QEMU's block/iscsi.c opens it: TEST UNIT READY
 * until the unit attentions of a fresh nexus are consumed, a standard INQUIRY
 * for the device type (disk or cdrom; a cdrom is read-only), the VPD pages the
 * LUN lists (block limits, logical block provisioning), READ CAPACITY(16) for
 * disks and (10) for cdroms. Guest I/O is cut into whole blocks of at most
 * MAX_TRANSFER bytes (or the LUN's own limit); unaligned edges are read,
 * modified and written back. UNMAP is used for discard only where the LUN
 * offers it; GET LBA STATUS answers block status on thin LUNs.
 */
import { BlockError } from '../../errors.js';
import { checkRange, type BlockStatus, type ProtocolNode } from '../../node.js';
import { checkStatus, IscsiSession, ISCSI_PORT, type IscsiSessionOptions } from './session.js';
import {
  DEVICE_TYPE, getLbaStatus, inquiry, parseBlockLimits, parseCapacity10, parseCapacity16, parseInquiry, parseLbaStatus,
  parseProvisioning, parseSupportedPages, readCapacity10, readCapacity16, readWrite, SENSE_KEY, senseText, STATUS,
  synchronizeCache10, testUnitReady, unmap, unmapParameters, type Provisioning,
} from './scsi.js';

/** the largest single READ/WRITE the node issues */
export const MAX_TRANSFER = 1024 * 1024;

export interface IscsiClientOptions {
  portal: string;
  target: string;
  lun: number;
  user?: string;
  password?: string;
  initiatorName: string;
  /** the header-digest option: crc32c, none, crc32c-none, none-crc32c */
  headerDigest?: string;
  readOnly?: boolean;
  /** seconds, 0 = none (QEMU's timeout option); default 30 */
  timeout?: number;
  displayName?: string;
}

export function parsePortal(portal: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::([0-9]{1,5}))?$/.exec(portal);
  if (!m) throw new BlockError('invalid-option', `iSCSI portal '${portal}' is not HOST[:PORT]`, { option: 'portal', value: portal });
  const port = m[3] === undefined ? ISCSI_PORT : Number(m[3]);
  if (port < 1 || port > 65535) throw new BlockError('invalid-option', `iSCSI portal '${portal}': port ${port} is not from 1 to 65535`, { option: 'portal', value: portal });
  return { host: m[1] ?? m[2]!, port };
}

export function headerDigests(opt: string | undefined): Array<'CRC32C' | 'None'> {
  switch (opt ?? 'none-crc32c') {
    case 'crc32c': return ['CRC32C'];
    case 'none': return ['None'];
    case 'crc32c-none': return ['CRC32C', 'None'];
    case 'none-crc32c': return ['None', 'CRC32C'];
    default: throw new BlockError('invalid-option', `Invalid header-digest setting : ${opt}`, { option: 'header-digest', value: opt });
  }
}

export class IscsiClientNode implements ProtocolNode {
  readonly driver = 'iscsi';
  readonly filename: string;
  readOnly: boolean;
  private blockSize = 512;
  private blocks = 0;
  private type: number = DEVICE_TYPE.DISK;
  private maxXfer = MAX_TRANSFER;
  private lbp: Provisioning = { lbpu: false, lbpws: false, lbprz: false };
  private lbpme = false;
  private maxUnmapBlocks = 0;
  private maxUnmapDescriptors = 0;

  private constructor(private readonly session: IscsiSession, private readonly opts: IscsiClientOptions) {
    this.filename = opts.displayName ?? `iscsi://${opts.portal}/${opts.target}/${opts.lun}`;
    this.readOnly = opts.readOnly ?? false;
  }

  static async connect(opts: IscsiClientOptions): Promise<IscsiClientNode> {
    const { host, port } = parsePortal(opts.portal);
    const sopts: IscsiSessionOptions = {
      host, port, target: opts.target, initiatorName: opts.initiatorName, user: opts.user, password: opts.password,
      headerDigest: headerDigests(opts.headerDigest),
      timeoutMs: (opts.timeout ?? 30) * 1000,
      where: `${opts.portal}`,
    };
    const session = await IscsiSession.open(sopts);
    const node = new IscsiClientNode(session, opts);
    try {
      await node.probeLun();
    } catch (e) {
      await session.close();
      throw e;
    }
    return node;
  }

  /** Negotiated session parameters (tests look at them). */
  get negotiated() {
    return this.session.neg;
  }

  get deviceType(): number {
    return this.type;
  }

  get logicalBlockSize(): number {
    return this.blockSize;
  }

  private lunError(why: string): BlockError {
    return new BlockError('io', `iSCSI: Failed to connect to LUN : ${why}`);
  }

  private async probeLun(): Promise<void> {
    const lun = this.opts.lun;
    // a new I_T nexus starts with unit attentions (power on, reset): consume them as libiscsi does
    for (let i = 0; ; i++) {
      const r = await this.session.command(lun, testUnitReady());
      if (r.status === STATUS.GOOD) break;
      if (r.sense?.key === SENSE_KEY.UNIT_ATTENTION && i < 8) continue;
      if (r.sense?.key === SENSE_KEY.ILLEGAL_REQUEST && r.sense.asc === 0x25) {
        throw new BlockError('not-found', `iSCSI: Failed to connect to LUN : ${senseText(r.sense)}`, { option: 'lun', value: lun });
      }
      // a cdrom without medium is NOT READY: qemu opens it anyway and finds 0 bytes
      if (r.sense?.key === SENSE_KEY.NOT_READY) break;
      checkStatus(r, 'iSCSI: Failed to connect to LUN');
    }
    const inq = await this.session.command(lun, inquiry(null, 96), { read: 96 });
    checkStatus(inq, 'iSCSI: failed to send inquiry command');
    const std = parseInquiry(inq.data!.subarray(0, Math.max(1, inq.received)));
    if (std.qualifier !== 0) throw new BlockError('not-found', `iSCSI: LUN ${lun} of ${this.opts.target} is not present (peripheral qualifier ${std.qualifier})`, { option: 'lun', value: lun });
    if (std.type !== DEVICE_TYPE.DISK && std.type !== DEVICE_TYPE.ROM) {
      throw new BlockError('unsupported', `iSCSI LUN ${lun} of ${this.opts.target} is a SCSI device of type 0x${std.type.toString(16)}, neither a disk nor a cdrom; the reference opens only those`, { option: 'lun', value: lun });
    }
    this.type = std.type;
    if (this.type === DEVICE_TYPE.ROM) this.readOnly = true;

    let vpdMaxBlocks = 0;
    const pagesR = await this.session.command(lun, inquiry(0x00, 255), { read: 255 });
    const pages = pagesR.status === STATUS.GOOD ? parseSupportedPages(pagesR.data!.subarray(0, pagesR.received)) : [];
    if (pages.includes(0xb0)) {
      const r = await this.session.command(lun, inquiry(0xb0, 64), { read: 64 });
      const bl = r.status === STATUS.GOOD ? parseBlockLimits(r.data!.subarray(0, r.received)) : null;
      if (bl) {
        this.maxUnmapBlocks = bl.maxUnmapBlocks;
        this.maxUnmapDescriptors = bl.maxUnmapDescriptors;
        vpdMaxBlocks = bl.maxTransfer;
      }
    }
    if (pages.includes(0xb2)) {
      const r = await this.session.command(lun, inquiry(0xb2, 64), { read: 64 });
      const p = r.status === STATUS.GOOD ? parseProvisioning(r.data!.subarray(0, r.received)) : null;
      if (p) this.lbp = p;
    }

    const disk = this.type === DEVICE_TYPE.DISK;
    const rc = disk ? await this.session.command(lun, readCapacity16(), { read: 32 }) : await this.session.command(lun, readCapacity10(), { read: 8 });
    if (rc.status !== STATUS.GOOD && !disk && rc.sense?.key === SENSE_KEY.NOT_READY) {
      this.blockSize = 2048;
      this.blocks = 0;
      return;
    }
    checkStatus(rc, `iSCSI: failed to send readcapacity${disk ? '16' : '10'} command`);
    const cap = disk ? parseCapacity16(rc.data!.subarray(0, rc.received)) : parseCapacity10(rc.data!.subarray(0, rc.received));
    if (cap.blockSize < 512 || cap.blockSize > 65536 || (cap.blockSize & (cap.blockSize - 1)) !== 0) {
      throw this.lunError(`the LUN reports a block size of ${cap.blockSize} bytes (a power of two from 512 to 65536 expected)`);
    }
    const bytes = (cap.lastLba + 1) * cap.blockSize;
    if (!Number.isSafeInteger(bytes)) throw this.lunError(`the LUN's capacity (last LBA ${cap.lastLba}) is beyond what the reference can address (2^53 - 1 bytes)`);
    this.blockSize = cap.blockSize;
    this.blocks = cap.lastLba + 1;
    this.lbpme = cap.lbpme;
    this.lbp.lbprz ||= cap.lbprz;
    const limit = vpdMaxBlocks > 0 ? Math.min(MAX_TRANSFER, vpdMaxBlocks * this.blockSize) : MAX_TRANSFER;
    this.maxXfer = Math.max(this.blockSize, Math.floor(limit / this.blockSize) * this.blockSize);
  }

  /** READ(16) on disks, READ(10) on cdroms, as block/iscsi.c picks them. */
  private get sixteen(): boolean {
    return this.type === DEVICE_TYPE.DISK;
  }

  size(): number {
    return this.blocks * this.blockSize;
  }

  private async readBlocks(lba: number, count: number, into: Buffer): Promise<void> {
    const n = count * this.blockSize;
    const r = await this.session.command(this.opts.lun, readWrite(false, lba, count, this.sixteen), { into: into.subarray(0, n) });
    checkStatus(r, `iSCSI READ${this.sixteen ? '16' : '10'} failed at lba ${lba}`);
    // (the buffer may be uninitialised memory: every byte must have come from the target)
    if (r.received !== n) throw new BlockError('io', `iSCSI READ${this.sixteen ? '16' : '10'} at lba ${lba}: the target sent ${r.received} of ${n} bytes`);
  }

  private async writeBlocks(lba: number, data: Buffer): Promise<void> {
    const r = await this.session.command(this.opts.lun, readWrite(true, lba, data.length / this.blockSize, this.sixteen), { write: data });
    if (r.status !== STATUS.GOOD && r.sense?.key === SENSE_KEY.DATA_PROTECTION) {
      throw new BlockError('read-only', `iSCSI WRITE${this.sixteen ? '16' : '10'} failed at lba ${lba}: the LUN is write protected (${senseText(r.sense)})`);
    }
    checkStatus(r, `iSCSI WRITE${this.sixteen ? '16' : '10'} failed at lba ${lba}`);
  }

  /** Whole blocks [first, first+count), in pieces of at most maxXfer, all in flight at once. */
  private async alignedRead(offset: number, out: Buffer): Promise<void> {
    const bs = this.blockSize;
    const parts: Promise<void>[] = [];
    for (let at = 0; at < out.length; at += this.maxXfer) {
      const n = Math.min(this.maxXfer, out.length - at);
      parts.push(this.readBlocks((offset + at) / bs, n / bs, out.subarray(at, at + n)));
    }
    await Promise.all(parts);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const bs = this.blockSize;
    const start = Math.floor(offset / bs) * bs;
    const end = Math.ceil((offset + length) / bs) * bs;
    const buf = Buffer.allocUnsafe(end - start);
    await this.alignedRead(start, buf);
    return start === offset && end === offset + length ? buf : buf.subarray(offset - start, offset - start + length);
  }

  private writable(): void {
    if (this.readOnly) {
      throw new BlockError('read-only', this.type === DEVICE_TYPE.ROM
        ? `${this.filename}: LUN ${this.opts.lun} is a cdrom, which is read-only`
        : `${this.filename}: opened read-only`);
    }
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.writable();
    checkRange(this, offset, data.length);
    if (data.length === 0) return;
    const bs = this.blockSize;
    const start = Math.floor(offset / bs) * bs;
    const end = Math.ceil((offset + data.length) / bs) * bs;
    let buf = data;
    if (start !== offset || end !== offset + data.length) {
      // read-modify-write of the partial blocks at either edge
      buf = Buffer.alloc(end - start);
      await this.alignedRead(start, buf.subarray(0, bs));
      if (end - bs > start) await this.alignedRead(end - bs, buf.subarray(buf.length - bs));
      data.copy(buf, offset - start);
    }
    const parts: Promise<void>[] = [];
    for (let at = 0; at < buf.length; at += this.maxXfer) {
      parts.push(this.writeBlocks((start + at) / bs, buf.subarray(at, Math.min(buf.length, at + this.maxXfer))));
    }
    await Promise.all(parts);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.writable();
    checkRange(this, offset, length);
    // one shared zero buffer bounds memory at maxXfer whatever the length
    const zero = Buffer.alloc(Math.min(length, this.maxXfer));
    for (let at = 0; at < length; at += zero.length) await this.write(offset + at, zero.subarray(0, Math.min(zero.length, length - at)));
  }

  /** UNMAP of the whole blocks inside the range, where the LUN offers it; advisory otherwise, as in QEMU. */
  async discard(offset: number, length: number): Promise<void> {
    this.writable();
    checkRange(this, offset, length);
    if (!this.lbp.lbpu) return;
    const bs = this.blockSize;
    let lba = Math.ceil(offset / bs);
    const endLba = Math.floor((offset + length) / bs);
    const perDesc = Math.min(this.maxUnmapBlocks || 0xffffffff, 0xffffffff, Math.floor(MAX_TRANSFER / bs) * 256);
    while (lba < endLba) {
      const blocks = Math.min(perDesc, endLba - lba);
      const param = unmapParameters([{ lba, blocks }]);
      const r = await this.session.command(this.opts.lun, unmap(param.length), { write: param });
      checkStatus(r, `iSCSI UNMAP failed at lba ${lba}`);
      lba += blocks;
    }
  }

  async flush(): Promise<void> {
    if (this.readOnly) return;
    const r = await this.session.command(this.opts.lun, synchronizeCache10());
    checkStatus(r, 'iSCSI SYNCHRONIZECACHE10 failed');
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this, offset, length);
    const all: BlockStatus = { offset, length, data: true, zero: false, present: true, depth: 0, hostOffset: offset };
    if (!this.lbpme || length === 0) return all;
    const bs = this.blockSize;
    const lba = Math.floor(offset / bs);
    const r = await this.session.command(this.opts.lun, getLbaStatus(lba, 24), { read: 24 });
    if (r.status !== STATUS.GOOD) return all; // as QEMU: a target that cannot tell leaves the range allocated
    const st = parseLbaStatus(r.data!.subarray(0, r.received));
    if (!st || st.lba !== lba || st.blocks === 0) return all;
    const len = Math.min(length, (lba + st.blocks) * bs - offset);
    return { offset, length: len, data: st.mapped, zero: !st.mapped && this.lbp.lbprz, present: true, depth: 0, hostOffset: offset };
  }

  async truncate(): Promise<void> {
    throw new BlockError('unsupported', `${this.filename}: an iSCSI LUN cannot be resized by its initiator`);
  }

  async allocatedSize(): Promise<number> {
    // qemu-img info prints "disk size: unavailable" for iSCSI
    return NaN;
  }

  async close(): Promise<void> {
    if (this.session.closed) return;
    try {
      await this.flush();
    } catch {
      // closing anyway; the write that needed the flush already reported
    }
    await this.session.close();
  }
}
