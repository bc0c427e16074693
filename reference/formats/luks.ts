/**
 * luks: a LUKS1 container (cryptsetup's on-disk format) as QEMU's crypto block driver
 * reads and writes it. The file is the LUKS header, eight key slots of anti-forensic key
 * material, then the payload: the guest disk, encrypted sector by sector (512 bytes) with
 * the master key; the IV of a sector is its guest sector number.
 *
 *   0        LUKS header (592 bytes; magic "LUKS\xba\xbe", version 1, cipher, mode, hash,
 *            payload offset, key bytes, master key digest + salt + iterations, uuid, slots)
 *   4096     key slot 0 material (key bytes x 4000 stripes, AES-encrypted), 4 KiB aligned
 *   ...      key slots 1..7 (left as holes until a passphrase is added)
 *   payload  guest sector 0 onwards; virtual size = file size - payload offset
 *
 * qemu-img info opens the image without its key (no guest I/O follows); every other open
 * needs the passphrase in the secret named by key-secret.
 */
import { pbkdf2Sync } from 'node:crypto';
import { BlockError, malformed } from '../errors.js';
import { checkRange, writeZeroesByWriting, type BlockStatus, type ImageNode, type ProtocolNode } from '../node.js';
import {
  buildLuks, LUKS_HEADER_SIZE, LUKS_MAGIC, LUKS_SECTOR, MAX_PBKDF2_ITERATIONS, nodeHash, parseLuksHeader, SectorCipher, unlockLuks, type LuksHeader,
  CIPHER_KEY_BYTES,
} from '../crypto/luks1.js';
import { lookupSecret, type SecretStore } from '../crypto/secret.js';
import type { CreateContext, FormatDriver, OpenContext } from './driver.js';

/** The fewest PBKDF2 iterations qemu (and cryptsetup) put in a key slot or the master key digest. */
export const MIN_ITERATIONS = 1000;

/** How many iterations `ms` milliseconds of PBKDF2 with this hash take here (qemu calibrates the same way). */
export function iterationsFor(ms: number, hash: string, keyBytes: number): number {
  const probe = 1000;
  const t0 = process.hrtime.bigint();
  pbkdf2Sync('qbc-calibration', Buffer.alloc(32), probe, keyBytes, hash);
  const ns = Number(process.hrtime.bigint() - t0) || 1;
  const n = Math.round((probe * ms * 1e6) / ns);
  // the reference refuses to open slots above its bound, so it never writes one
  return Math.min(MAX_PBKDF2_ITERATIONS, Math.max(MIN_ITERATIONS, n));
}

/** create options after schema validation (schemas/create/luks.json) */
interface LuksCreateOptions {
  size: number;
  'key-secret'?: string;
  'cipher-alg': string;
  'cipher-mode': string;
  'ivgen-alg': string;
  'ivgen-hash-alg'?: string;
  'hash-alg': string;
  'iter-time': number;
  preallocation?: 'off' | 'falloc' | 'full';
}

/** The key-secret's passphrase, with qemu's words when it is missing. */
function passphrase(secrets: SecretStore | undefined, id: string | undefined): Buffer {
  if (!id) throw new BlockError('invalid-option', "Parameter 'key-secret' is required for cipher", { option: 'key-secret' });
  return lookupSecret(secrets ?? new Map(), id, 'key-secret');
}

export async function createLuks(file: ProtocolNode, o: LuksCreateOptions, ctx: CreateContext = {}): Promise<void> {
  const pass = passphrase(ctx.secrets, o['key-secret']);
  const hash = nodeHash(o['hash-alg']);
  const bits = /^([a-z0-9]+)-(\d+)$/.exec(o['cipher-alg']);
  if (!bits || !CIPHER_KEY_BYTES[bits[1]]?.includes(Number(bits[2]) / 8)) throw new BlockError('unsupported', `cipher-alg '${o['cipher-alg']}' is unsupported by the reference`, { option: 'cipher-alg', value: o['cipher-alg'] });
  const keyBytes = (Number(bits[2]) / 8) * (o['cipher-mode'] === 'xts' ? 2 : 1);
  const slotIters = iterationsFor(o['iter-time'], hash, keyBytes);
  // qemu gives the master key digest an eighth of the slot's time
  const mkIters = Math.max(MIN_ITERATIONS, Math.floor(slotIters / 8));
  const built = buildLuks({
    cipherAlg: o['cipher-alg'], cipherMode: o['cipher-mode'], ivgenAlg: o['ivgen-alg'],
    ivgenHashAlg: o['ivgen-alg'] === 'essiv' ? o['ivgen-hash-alg'] ?? 'sha256' : undefined,
    hashAlg: o['hash-alg'], iterations: slotIters, mkIterations: mkIters,
  }, pass);
  await file.truncate(0);
  const head = Buffer.alloc(built.keyMaterialOffset);
  built.header.copy(head, 0);
  await file.write(0, head);
  await file.write(built.keyMaterialOffset, built.keyMaterial);
  await file.truncate(built.payloadOffset + o.size, o.preallocation ?? 'off');
}

export class LuksImage implements ImageNode {
  readonly driver = 'luks';
  readonly filename: string;
  private readonly payload: number;
  private closed = false;

  private constructor(
    readonly file: ProtocolNode,
    readonly header: LuksHeader,
    private readonly cipher: SectorCipher | null,
    readonly readOnly: boolean,
  ) {
    this.filename = file.filename;
    this.payload = header.payloadOffset * LUKS_SECTOR;
  }

  static async open(file: ProtocolNode, ctx: OpenContext): Promise<LuksImage> {
    const size = file.size();
    const raw = await file.read(0, Math.min(size, LUKS_HEADER_SIZE));
    const h = parseLuksHeader(raw);
    nodeHash(h.hashSpec);
    if (h.payloadOffset * LUKS_SECTOR > size) throw malformed('payload_offset', `payload offset ${h.payloadOffset * LUKS_SECTOR} is past the end of the file (${size} bytes)`, 104);
    // an unsupported cipher fails here, before any PBKDF2 work
    new SectorCipher(h.cipherName, h.cipherMode, Buffer.alloc(h.keyBytes, 1));
    if (ctx.noIO && !ctx.keySecret) return new LuksImage(file, h, null, true);
    const pass = passphrase(ctx.secrets, ctx.keySecret);
    const { masterKey } = await unlockLuks(h, pass, size, (off, len) => file.read(off, len));
    return new LuksImage(file, h, new SectorCipher(h.cipherName, h.cipherMode, masterKey), ctx.readOnly);
  }

  size(): number {
    return Math.floor((this.file.size() - this.payload) / LUKS_SECTOR) * LUKS_SECTOR;
  }

  private key(): SectorCipher {
    if (!this.cipher) throw new BlockError('invalid-option', "Parameter 'key-secret' is required for cipher", { option: 'key-secret' });
    return this.cipher;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const cipher = this.key();
    const start = Math.floor(offset / LUKS_SECTOR) * LUKS_SECTOR;
    const end = Math.ceil((offset + length) / LUKS_SECTOR) * LUKS_SECTOR;
    const data = await this.file.read(this.payload + start, end - start);
    cipher.run(false, data, start / LUKS_SECTOR);
    return start === offset && end === offset + length ? data : data.subarray(offset - start, offset - start + length);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.readOnly) throw new BlockError('read-only', 'luks: the image is opened read-only');
    checkRange(this, offset, data.length);
    if (data.length === 0) return;
    const cipher = this.key();
    const start = Math.floor(offset / LUKS_SECTOR) * LUKS_SECTOR;
    const end = Math.ceil((offset + data.length) / LUKS_SECTOR) * LUKS_SECTOR;
    let buf: Buffer;
    if (start === offset && end === offset + data.length) {
      buf = Buffer.from(data);
    } else {
      // partial sectors: read, decrypt, merge, re-encrypt
      buf = await this.read(start, end - start);
      buf = Buffer.from(buf);
      data.copy(buf, offset - start);
    }
    cipher.run(true, buf, start / LUKS_SECTOR);
    await this.file.write(this.payload + start, buf);
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    // an encrypted zero is not a zero on disk: write it, as QEMU's crypto driver does
    return writeZeroesByWriting(this, offset, length);
  }

  async discard(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    // QEMU passes discards to the file; what a discarded range reads as is then undefined
  }

  async flush(): Promise<void> {
    await this.file.flush();
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this, offset, length);
    // every payload byte is ciphertext: qemu-img map shows the whole disk as data, with no host offset
    return { offset, length: Math.min(length, this.size() - offset), data: true, zero: false, present: true, depth: 0 };
  }

  encrypted = true;
  /** LUKS has no dirty flag; qemu-img shows false */
  dirty = false;

  formatSpecific(): { type: string; data: Record<string, unknown> } {
    return { type: 'luks', data: luksFormatSpecific(this.header) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }
}

/** qemu-img info's description of a LUKS header, keys in its order. */
export function luksFormatSpecific(h: LuksHeader): Record<string, unknown> {
  {
    const [mode, ivspec = ''] = h.cipherMode.split('-');
    const [ivgen, ivhash] = ivspec.split(':');
    const bits = (mode === 'xts' ? h.keyBytes / 2 : h.keyBytes) * 8;
    const data: Record<string, unknown> = { 'ivgen-alg': ivgen || 'plain64', 'hash-alg': h.hashSpec, 'cipher-alg': `${h.cipherName}-${bits}`, uuid: h.uuid };
    if (ivhash) data['ivgen-hash-alg'] = ivhash;
    data['cipher-mode'] = mode;
    data.slots = h.slots.map((s) => (s.active
      ? { active: true, iters: s.iterations, 'key-offset': s.keyMaterialOffset * LUKS_SECTOR, stripes: s.stripes }
      : { active: false, 'key-offset': s.keyMaterialOffset * LUKS_SECTOR }));
    data['payload-offset'] = h.payloadOffset * LUKS_SECTOR;
    data['master-key-iters'] = h.mkDigestIterations;
    return data;
  }
}

export const luksDriver: FormatDriver = {
  name: 'luks',
  probe: (head) => (head.length >= 8 && head.subarray(0, 6).equals(LUKS_MAGIC) && head.readUInt16BE(6) === 1 ? 100 : 0),
  create: (file, options, ctx) => createLuks(file, options as unknown as LuksCreateOptions, ctx),
  open: (file, ctx) => LuksImage.open(file, ctx),
  createOptionKeys: ['size', 'key-secret', 'cipher-alg', 'cipher-mode', 'ivgen-alg', 'ivgen-hash-alg', 'hash-alg', 'iter-time', 'preallocation', 'nocow', 'extent_size_hint'],
};
