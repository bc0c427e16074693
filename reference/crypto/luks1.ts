/**
 * LUKS1 on-disk header, the anti-forensic splitter, key slots and sector ciphers:
 * the layout cryptsetup documents (LUKS1 On-Disk Format) and qemu's crypto/block-luks.c
 * writes. aes runs on node:crypto's native ECB (and CBC); serpent, twofish and cast5, which
 * node's default OpenSSL providers lack, are hand-written block ciphers under ./block, all
 * driven by the same sector modes.
 */
import { createCipheriv, createDecipheriv, createHash, getHashes, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BlockCipher } from './block/types.js';
import { Serpent } from './block/serpent.js';
import { Twofish } from './block/twofish.js';
import { Cast5 } from './block/cast5.js';
import { xtsSectors } from './xts.js';
import { BlockError, malformed } from '../errors.js';

export const LUKS_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
export const LUKS_HEADER_SIZE = 592;
export const LUKS_SECTOR = 512;
export const LUKS_SLOTS = 8;
const SLOT_ACTIVE = 0x00ac71f3;
const SLOT_INACTIVE = 0x0000dead;
/** qemu's key material alignment and first key slot offset (bytes). */
export const LUKS_ALIGN_KEYMATERIAL = 4096;
export const LUKS_KEY_SLOT_OFFSET = 4096;
/**
 * Bound on attacker-chosen work: an image may name any PBKDF2 iteration count, so the
 * reference refuses counts above this (about a few seconds of SHA-256 here) and stripes
 * above this (bounded memory: key bytes x stripes <= 64 x 65536 = 4 MiB per slot).
 */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;
export const MAX_STRIPES = 65_536;

export interface LuksKeySlot {
  active: boolean;
  iterations: number;
  salt: Buffer;
  keyMaterialOffset: number; // sectors
  stripes: number;
}

export interface LuksHeader {
  version: number;
  cipherName: string;
  cipherMode: string;
  hashSpec: string;
  payloadOffset: number; // sectors
  keyBytes: number;
  mkDigest: Buffer;
  mkDigestSalt: Buffer;
  mkDigestIterations: number;
  uuid: string;
  slots: LuksKeySlot[];
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? len : z).toString('latin1');
}

export function parseLuksHeader(buf: Buffer): LuksHeader {
  if (buf.length < LUKS_HEADER_SIZE) throw malformed('header', `LUKS header truncated: ${buf.length} of ${LUKS_HEADER_SIZE} bytes`, 0);
  if (!buf.subarray(0, 6).equals(LUKS_MAGIC)) throw malformed('magic', 'not a LUKS header', 0);
  const version = buf.readUInt16BE(6);
  if (version !== 1) throw new BlockError('unsupported', `LUKS version ${version} is not supported (only LUKS1)`, { field: 'version', value: version });
  const slots: LuksKeySlot[] = [];
  for (let i = 0; i < LUKS_SLOTS; i++) {
    const o = 208 + i * 48;
    const state = buf.readUInt32BE(o);
    if (state !== SLOT_ACTIVE && state !== SLOT_INACTIVE) throw malformed(`key_slot[${i}].active`, `bad state 0x${state.toString(16)}`, o);
    slots.push({ active: state === SLOT_ACTIVE, iterations: buf.readUInt32BE(o + 4), salt: Buffer.from(buf.subarray(o + 8, o + 40)), keyMaterialOffset: buf.readUInt32BE(o + 40), stripes: buf.readUInt32BE(o + 44) });
  }
  const h: LuksHeader = {
    version,
    cipherName: cstr(buf, 8, 32),
    cipherMode: cstr(buf, 40, 32),
    hashSpec: cstr(buf, 72, 32),
    payloadOffset: buf.readUInt32BE(104),
    keyBytes: buf.readUInt32BE(108),
    mkDigest: Buffer.from(buf.subarray(112, 132)),
    mkDigestSalt: Buffer.from(buf.subarray(132, 164)),
    mkDigestIterations: buf.readUInt32BE(164),
    uuid: cstr(buf, 168, 40),
    slots,
  };
  if (h.keyBytes === 0 || h.keyBytes > 64) throw malformed('key_bytes', `master key size ${h.keyBytes} is not 1..64 bytes`, 108);
  if (h.mkDigestIterations === 0 || h.mkDigestIterations > MAX_PBKDF2_ITERATIONS)
    throw malformed('mk_digest_iter', `${h.mkDigestIterations} iterations is outside 1..${MAX_PBKDF2_ITERATIONS} (the reference caps PBKDF2 work)`, 164);
  return h;
}

export function serializeLuksHeader(h: LuksHeader): Buffer {
  const b = Buffer.alloc(LUKS_HEADER_SIZE);
  LUKS_MAGIC.copy(b, 0);
  b.writeUInt16BE(1, 6);
  b.write(h.cipherName, 8, 31, 'latin1');
  b.write(h.cipherMode, 40, 31, 'latin1');
  b.write(h.hashSpec, 72, 31, 'latin1');
  b.writeUInt32BE(h.payloadOffset, 104);
  b.writeUInt32BE(h.keyBytes, 108);
  h.mkDigest.copy(b, 112);
  h.mkDigestSalt.copy(b, 132);
  b.writeUInt32BE(h.mkDigestIterations, 164);
  b.write(h.uuid, 168, 39, 'latin1');
  for (let i = 0; i < LUKS_SLOTS; i++) {
    const s = h.slots[i];
    const o = 208 + i * 48;
    b.writeUInt32BE(s.active ? SLOT_ACTIVE : SLOT_INACTIVE, o);
    b.writeUInt32BE(s.iterations, o + 4);
    s.salt.copy(b, o + 8);
    b.writeUInt32BE(s.keyMaterialOffset, o + 40);
    b.writeUInt32BE(s.stripes, o + 44);
  }
  return b;
}

/** LUKS hash names (cryptsetup / qemu spelling) to node's. */
export function nodeHash(spec: string): string {
  const n = spec.toLowerCase();
  const map: Record<string, string> = { md5: 'md5', sha1: 'sha1', sha224: 'sha224', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512', ripemd160: 'ripemd160' };
  const h = map[n];
  if (!h || !getHashes().includes(h)) throw new BlockError('unsupported', `hash '${spec}' is unsupported by the reference`, { field: 'hash_spec', value: spec });
  return h;
}

function diffuse(block: Buffer, hash: string): Buffer {
  const ds = createHash(hash).digest().length;
  const out = Buffer.alloc(block.length);
  const iv = Buffer.alloc(4);
  for (let j = 0, off = 0; off < block.length; j++, off += ds) {
    const len = Math.min(ds, block.length - off);
    iv.writeUInt32BE(j, 0);
    createHash(hash).update(iv).update(block.subarray(off, off + len)).digest().copy(out, off, 0, len);
  }
  return out;
}

/** a ^= b, bytewise; a word at a time for long, 4-byte aligned buffers (sector buffers are) */
function xorInto(a: Buffer, b: Buffer): void {
  let i = 0;
  // (two typed-array views cost more than a short loop: cbc xors single blocks)
  if (a.length >= 256 && a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const n = a.length >>> 2;
    const wa = new Uint32Array(a.buffer, a.byteOffset, n), wb = new Uint32Array(b.buffer, b.byteOffset, n);
    for (let w = 0; w < n; w++) wa[w] ^= wb[w];
    i = n * 4;
  }
  for (; i < a.length; i++) a[i] ^= b[i];
}

/** Anti-forensic split: `stripes` blocks whose merge is `key`. */
export function afSplit(key: Buffer, stripes: number, hash: string): Buffer {
  const n = key.length;
  const out = Buffer.alloc(n * stripes);
  let d: Buffer = Buffer.alloc(n);
  for (let i = 0; i < stripes - 1; i++) {
    const r = randomBytes(n);
    r.copy(out, i * n);
    xorInto(d, r);
    d = diffuse(d, hash);
  }
  const last = Buffer.from(key);
  xorInto(last, d);
  last.copy(out, (stripes - 1) * n);
  return out;
}

export function afMerge(material: Buffer, keyBytes: number, stripes: number, hash: string): Buffer {
  let d: Buffer = Buffer.alloc(keyBytes);
  for (let i = 0; i < stripes - 1; i++) {
    xorInto(d, material.subarray(i * keyBytes, (i + 1) * keyBytes));
    d = diffuse(d, hash);
  }
  xorInto(d, material.subarray((stripes - 1) * keyBytes, stripes * keyBytes));
  return d;
}

/** Key lengths (bytes) each LUKS cipher family takes, as qemu 7.2 names them (cipher-alg = family-bits). */
export const CIPHER_KEY_BYTES: Record<string, number[]> = {
  aes: [16, 24, 32],
  serpent: [16, 24, 32],
  twofish: [16, 24, 32],
  cast5: [16],
};

/** qemu's spelling of a cipher family in its "No <Family> cipher with key size N" errors */
const FAMILY_NAME: Record<string, string> = { aes: 'AES', serpent: 'Serpent', twofish: 'Twofish' };

/** node's native aes in ECB, wrapped as a BlockCipher: one long-lived cipher per direction. */
class NodeAes implements BlockCipher {
  readonly blockSize = 16;
  private readonly enc: import('node:crypto').Cipher;
  private readonly dec: import('node:crypto').Decipher;
  constructor(private readonly key: Buffer) {
    const algo = `aes-${key.length * 8}-ecb`;
    this.enc = createCipheriv(algo, key, null).setAutoPadding(false);
    this.dec = createDecipheriv(algo, key, null).setAutoPadding(false);
  }
  encrypt(buf: Uint8Array): void { ecbInPlace(this.enc, buf); }
  decrypt(buf: Uint8Array): void { ecbInPlace(this.dec, buf); }
  cbcEncrypt(buf: Uint8Array, ivs: Uint8Array, sectorSize: number): void {
    const algo = `aes-${this.key.length * 8}-cbc`;
    for (let o = 0, i = 0; o < buf.length; o += sectorSize, i += 16) {
      const sec = buf.subarray(o, o + sectorSize);
      sec.set(createCipheriv(algo, this.key, ivs.subarray(i, i + 16)).setAutoPadding(false).update(sec));
    }
  }
}

/**
 * `buf` through a long-lived ECB cipher, in place, 64 KiB per call: node allocates the output
 * of every call, and allocations that size are reused by malloc where larger ones are fresh
 * pages (page faults) each time.
 */
function ecbInPlace(c: import('node:crypto').Cipher | import('node:crypto').Decipher, buf: Uint8Array): void {
  for (let o = 0; o < buf.length; o += 65536) {
    const part = buf.subarray(o, o + 65536);
    part.set(c.update(part));
  }
}

/** A keyed block cipher of `family`; the key length must be one the family takes. */
export function blockCipher(family: string, key: Buffer): BlockCipher {
  if (family === 'aes') return new NodeAes(key);
  if (family === 'serpent') return new Serpent(key);
  if (family === 'twofish') return new Twofish(key);
  if (family === 'cast5') return new Cast5(key);
  throw new BlockError('unsupported', `cipher '${family}' is unsupported by the reference`, { field: 'cipher_name', value: family });
}

/** A sector cipher: cipher name + mode ("xts-plain64", "cbc-essiv:sha256", "ecb"). */
export class SectorCipher {
  private readonly ivgen: 'plain' | 'plain64' | 'essiv' | 'none';
  readonly mode: string;
  private readonly bc: BlockCipher;
  /** xts only: the tweak cipher (second half of the key) */
  private readonly tweak?: BlockCipher;
  /** essiv only: the cipher that turns a sector number into its IV */
  private readonly essiv?: BlockCipher;

  constructor(cipherName: string, cipherMode: string, readonly key: Buffer) {
    const name = cipherName.toLowerCase();
    const sizes = CIPHER_KEY_BYTES[name];
    if (!sizes)
      throw new BlockError('unsupported', `cipher '${cipherName}' is unsupported by the reference`, { field: 'cipher_name', value: cipherName });
    const [mode, iv = '', ...rest] = cipherMode.toLowerCase().split('-');
    if (rest.length) throw new BlockError('unsupported', `cipher mode '${cipherMode}' is not understood`, { field: 'cipher_mode', value: cipherMode });
    this.mode = mode;
    if (!['xts', 'cbc', 'ecb', 'ctr'].includes(mode)) throw new BlockError('unsupported', `cipher mode '${mode}' is unsupported by the reference`, { field: 'cipher_mode', value: cipherMode });
    const dataKeyLen = mode === 'xts' ? key.length / 2 : key.length;
    if (!sizes.includes(dataKeyLen))
      throw new BlockError('unsupported', `${name} with a ${key.length}-byte key in mode ${mode} is unsupported`, { field: 'key_bytes', value: key.length });
    this.bc = blockCipher(name, key.subarray(0, dataKeyLen));
    // XTS is defined over 16-byte blocks only (qemu: "Unsupported cipher mode xts")
    if (mode === 'xts' && this.bc.blockSize !== 16) throw new BlockError('unsupported', 'Unsupported cipher mode xts', { field: 'cipher_mode', value: cipherMode });
    if (mode === 'xts') this.tweak = blockCipher(name, key.subarray(dataKeyLen));
    const [ivName, ivHash] = iv.split(':');
    if (mode === 'ecb') {
      this.ivgen = 'none';
    } else if (ivName === 'plain' || ivName === 'plain64') {
      this.ivgen = ivName;
    } else if (ivName === 'essiv') {
      this.ivgen = 'essiv';
      const h = nodeHash(ivHash ?? '');
      // qemu keys the essiv cipher with the digest of the key, in the same cipher family,
      // so the digest length must be a key length that family takes
      const essivKey = createHash(h).update(key).digest();
      if (!sizes.includes(essivKey.length)) {
        // qemu 7.2's words: a family with several key sizes looks for one of the digest's
        // length; a family of one size (cast5) is refused outright unless the digest fits it
        const what = FAMILY_NAME[name] ? `No ${FAMILY_NAME[name]} cipher with key size ${essivKey.length} available` : `Cipher ${name}-${dataKeyLen * 8} not supported with essiv`;
        throw new BlockError('unsupported', `${what} (the essiv key is the ${ivHash} digest of the key, ${essivKey.length} bytes)`, { field: 'cipher_mode', value: cipherMode });
      }
      this.essiv = blockCipher(name, essivKey);
    } else {
      throw new BlockError('unsupported', `IV generator '${iv}' is unsupported by the reference`, { field: 'cipher_mode', value: cipherMode });
    }
  }

  /** The IVs of `sectors` sectors from `sector`, one cipher block each, in one buffer. */
  private ivs(sector: number, sectors: number): Buffer {
    const n = this.bc.blockSize;
    const ivs = Buffer.alloc(sectors * n);
    for (let i = 0; i < sectors; i++) {
      // plain: the sector number truncated to 32 bits; plain64: all of it (little endian)
      const s = sector + i;
      ivs.writeUInt32LE(s % 2 ** 32, i * n);
      if (this.ivgen !== 'plain') ivs.writeUInt32LE(Math.floor(s / 2 ** 32), i * n + 4);
    }
    // essiv: every sector's IV through one ECB call
    if (this.essiv) this.essiv.encrypt(ivs);
    return ivs;
  }

  /** XTS over the whole request: the sectors' tweaks are E_K2(IV) in one ECB call, then ./xts.ts. */
  private xtsRun(encrypt: boolean, data: Buffer, sector: number): void {
    const tweaks = this.ivs(sector, data.length / LUKS_SECTOR);
    this.tweak!.encrypt(tweaks);
    xtsSectors(data, tweaks, encrypt ? (b) => this.bc.encrypt(b) : (b) => this.bc.decrypt(b));
  }

  /** CBC per sector, the IV restarting at each sector; decryption is one ECB call then XOR. */
  private cbcRun(encrypt: boolean, data: Buffer, sector: number): void {
    const n = this.bc.blockSize;
    const sectors = data.length / LUKS_SECTOR;
    const ivs = this.ivs(sector, sectors);
    if (encrypt && this.bc.cbcEncrypt) {
      this.bc.cbcEncrypt(data, ivs, LUKS_SECTOR);
      return;
    }
    if (encrypt) {
      for (let s = 0; s < sectors; s++) {
        let prev = ivs.subarray(s * n, s * n + n);
        for (let o = s * LUKS_SECTOR; o < (s + 1) * LUKS_SECTOR; o += n) {
          const blk = data.subarray(o, o + n);
          xorInto(blk, prev);
          this.bc.encrypt(blk);
          prev = blk;
        }
      }
      return;
    }
    // the block before each block: the sector IV for a sector's first block, else the previous ciphertext
    const prev = Buffer.alloc(data.length);
    data.copy(prev, n, 0, data.length - n);
    for (let s = 0; s < sectors; s++) ivs.copy(prev, s * LUKS_SECTOR, s * n, s * n + n);
    this.bc.decrypt(data);
    xorInto(data, prev);
  }

  /** CTR as nettle/qemu do it: the IV block is a big-endian counter incremented once per block. */
  private ctrRun(data: Buffer, sector: number): void {
    const n = this.bc.blockSize;
    const sectors = data.length / LUKS_SECTOR;
    const ivs = this.ivs(sector, sectors);
    const stream = Buffer.alloc(data.length);
    for (let s = 0; s < sectors; s++) {
      const ctr = Buffer.from(ivs.subarray(s * n, s * n + n));
      for (let o = s * LUKS_SECTOR; o < (s + 1) * LUKS_SECTOR; o += n) {
        ctr.copy(stream, o);
        for (let i = n - 1; i >= 0; i--) {
          ctr[i] = (ctr[i] + 1) & 0xff;
          if (ctr[i]) break;
        }
      }
    }
    this.bc.encrypt(stream);
    xorInto(data, stream);
  }

  /** En/decrypt `data` (a whole number of 512-byte sectors) starting at `sector`, in place. */
  run(encrypt: boolean, data: Buffer, sector: number): Buffer {
    if (data.length % LUKS_SECTOR) throw new BlockError('invalid-size', `encrypted I/O of ${data.length} bytes is not a multiple of ${LUKS_SECTOR}`);
    if (!data.length) return data;
    if (this.mode === 'xts') this.xtsRun(encrypt, data, sector);
    else if (this.mode === 'cbc') this.cbcRun(encrypt, data, sector);
    else if (this.mode === 'ctr') this.ctrRun(data, sector);
    else if (encrypt) this.bc.encrypt(data);
    else this.bc.decrypt(data);
    return data;
  }
}

function pbkdf2(pass: Buffer, salt: Buffer, iterations: number, len: number, hash: string, what: string): Buffer {
  if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS)
    throw new BlockError('unsupported', `${what}: ${iterations} PBKDF2 iterations exceeds the reference's bound of ${MAX_PBKDF2_ITERATIONS}`, { field: what, value: iterations });
  return pbkdf2Sync(pass, salt, iterations, len, hash);
}

/** The master key digest check. */
export function mkDigestMatches(h: LuksHeader, mk: Buffer): boolean {
  const d = pbkdf2(mk, h.mkDigestSalt, h.mkDigestIterations, 20, nodeHash(h.hashSpec), 'mk_digest_iter');
  return timingSafeEqual(d, h.mkDigest);
}

/**
 * Try each active key slot with the passphrase; `readAt(offset, len)` reads the container.
 * Returns the master key or throws 'invalid-option' naming key-secret (never the passphrase).
 */
export async function unlockLuks(h: LuksHeader, passphrase: Buffer, fileSize: number, readAt: (off: number, len: number) => Promise<Buffer>): Promise<{ masterKey: Buffer; slot: number }> {
  const hash = nodeHash(h.hashSpec);
  // fails early on unsupported ciphers, before any PBKDF2 work
  new SectorCipher(h.cipherName, h.cipherMode, Buffer.alloc(h.keyBytes, 1));
  if (h.payloadOffset * LUKS_SECTOR > fileSize) throw malformed('payload_offset', `payload offset ${h.payloadOffset * LUKS_SECTOR} is past the end of the file (${fileSize} bytes)`, 104);
  for (let i = 0; i < LUKS_SLOTS; i++) {
    const s = h.slots[i];
    if (!s.active) continue;
    if (s.stripes < 1 || s.stripes > MAX_STRIPES) throw malformed(`key_slot[${i}].stripes`, `${s.stripes} stripes is outside 1..${MAX_STRIPES}`);
    const len = Math.ceil((h.keyBytes * s.stripes) / LUKS_SECTOR) * LUKS_SECTOR;
    if (s.keyMaterialOffset * LUKS_SECTOR + len > fileSize) throw malformed(`key_slot[${i}].key_material_offset`, 'key material is past the end of the file');
    const slotKey = pbkdf2(passphrase, s.salt, s.iterations, h.keyBytes, hash, `key_slot[${i}].iterations`);
    const material = await readAt(s.keyMaterialOffset * LUKS_SECTOR, len);
    new SectorCipher(h.cipherName, h.cipherMode, slotKey).run(false, material, 0);
    const mk = afMerge(material, h.keyBytes, s.stripes, hash);
    if (mkDigestMatches(h, mk)) return { masterKey: mk, slot: i };
  }
  throw new BlockError('invalid-option', 'Invalid password, cannot unlock any keyslot', { option: 'key-secret' });
}

export interface LuksCreateParams {
  cipherAlg: string; // aes-256 etc
  cipherMode: string; // xts | cbc | ecb | ctr
  ivgenAlg: string; // plain | plain64 | essiv
  ivgenHashAlg?: string;
  hashAlg: string;
  iterations: number; // key slot PBKDF2 iterations
  mkIterations: number;
}

/** A LUKS1 header and slot 0 key material laid out as qemu writes them. */
export function buildLuks(p: LuksCreateParams, passphrase: Buffer): { header: Buffer; keyMaterial: Buffer; keyMaterialOffset: number; payloadOffset: number; masterKey: Buffer } {
  const m = /^([a-z0-9]+)-(\d+)$/.exec(p.cipherAlg);
  if (!m || !CIPHER_KEY_BYTES[m[1]]?.includes(Number(m[2]) / 8)) throw new BlockError('unsupported', `cipher-alg '${p.cipherAlg}' is unsupported by the reference`, { option: 'cipher-alg', value: p.cipherAlg });
  const family = m[1];
  const keyBytes = (Number(m[2]) / 8) * (p.cipherMode === 'xts' ? 2 : 1);
  // qemu names the IV generator even for ecb, which uses none ("ecb-plain64")
  const mode = `${p.cipherMode}-${p.ivgenAlg}${p.ivgenAlg === 'essiv' ? ':' + (p.ivgenHashAlg ?? 'sha256') : ''}`;
  const hash = nodeHash(p.hashAlg);
  const masterKey = randomBytes(keyBytes);
  new SectorCipher(family, mode, masterKey); // validates the combination
  const stripes = 4000;
  const align = LUKS_ALIGN_KEYMATERIAL / LUKS_SECTOR;
  const splitSectors = Math.ceil(Math.ceil((keyBytes * stripes) / LUKS_SECTOR) / align) * align;
  const first = LUKS_KEY_SLOT_OFFSET / LUKS_SECTOR;
  const payloadOffset = first + LUKS_SLOTS * splitSectors;
  const mkDigestSalt = randomBytes(32);
  const slotSalt = randomBytes(32);
  const slots: LuksKeySlot[] = [];
  for (let i = 0; i < LUKS_SLOTS; i++) slots.push({ active: i === 0, iterations: i === 0 ? p.iterations : 0, salt: i === 0 ? slotSalt : Buffer.alloc(32), keyMaterialOffset: first + i * splitSectors, stripes });
  const u = randomBytes(16);
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  const hex = u.toString('hex');
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const h: LuksHeader = {
    version: 1, cipherName: family, cipherMode: mode, hashSpec: p.hashAlg, payloadOffset, keyBytes,
    mkDigest: pbkdf2(masterKey, mkDigestSalt, p.mkIterations, 20, hash, 'mk_digest_iter'), mkDigestSalt, mkDigestIterations: p.mkIterations, uuid, slots,
  };
  const split = afSplit(masterKey, stripes, hash);
  const material = Buffer.alloc(Math.ceil(split.length / LUKS_SECTOR) * LUKS_SECTOR);
  split.copy(material);
  const slotKey = pbkdf2(passphrase, slotSalt, p.iterations, keyBytes, hash, 'iter-time');
  new SectorCipher(family, mode, slotKey).run(true, material, 0);
  return { header: serializeLuksHeader(h), keyMaterial: material, keyMaterialOffset: first * LUKS_SECTOR, payloadOffset: payloadOffset * LUKS_SECTOR, masterKey };
}
