/**
 * Decrypting an encrypted qcow2 image's data clusters (data liberation):
 *
 * - crypt_method 1, legacy AES (encrypt.format=aes): AES-128-CBC per 512-byte sector, the key
 *   the passphrase itself, the IV the guest sector number;
 * - crypt_method 2, LUKS (encrypt.format=luks): a LUKS1 header and key slots in clusters named
 *   by the crypt header extension (offset, length); the sector cipher's IV is the *host*
 *   sector number of the data (QEMU's crypt_physical_offset).
 *
 * Writes encrypt with the same IVs (encryptData); create lays out the LUKS header the way
 * qemu's qcow2_set_up_encryption does (buildQcow2Luks): the header and its eight key slot
 * areas in freshly allocated clusters right after the L1 table, zero-filled to the cluster
 * end, the extension recording the header's exact length (the LUKS payload offset).
 * Compressed writes are refused (qemu-img: "Compression and encryption not supported at the
 * same time").
 */
import { BlockError, malformed } from '../../errors.js';
import { buildLuks, CIPHER_KEY_BYTES, LUKS_SECTOR, nodeHash, parseLuksHeader, SectorCipher, unlockLuks, type LuksHeader } from '../../crypto/luks1.js';
import { legacyAesCipher } from '../../crypto/qcow-aes.js';
import { lookupSecret, type SecretStore } from '../../crypto/secret.js';
import type { BlockNode } from '../../node.js';
import { EXT_CRYPTO_HEADER, type HeaderExtension } from './layout.js';
import { iterationsFor, luksFormatSpecific, MIN_ITERATIONS } from '../luks.js';

export interface Qcow2Crypto {
  format: 'aes' | 'luks';
  /** null until unlocked (an info-only open needs no key) */
  cipher: SectorCipher | null;
  /** guest offset (aes) or host offset (luks) gives the IV */
  physical: boolean;
  luks?: LuksHeader;
}

export interface KeyContext { secrets?: SecretStore; keySecret?: string; noIO?: boolean }

export async function openQcow2Crypto(file: BlockNode, cryptMethod: number, exts: HeaderExtension[], ctx: KeyContext): Promise<Qcow2Crypto> {
  if (cryptMethod !== 1 && cryptMethod !== 2) throw malformed('crypt_method', `unknown encryption method ${cryptMethod} (1 aes, 2 luks)`, 32);
  const key = (): Buffer => {
    if (!ctx.keySecret) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
    return lookupSecret(ctx.secrets ?? new Map(), ctx.keySecret, 'encrypt.key-secret');
  };
  if (cryptMethod === 1) {
    return { format: 'aes', physical: false, cipher: ctx.noIO && !ctx.keySecret ? null : legacyAesCipher(key()) };
  }
  const ext = exts.find((e) => e.type === EXT_CRYPTO_HEADER);
  if (!ext) throw malformed('crypto_header', 'a LUKS-encrypted qcow2 image needs the full disk encryption header extension', 32);
  if (ext.data.length !== 16) throw malformed('crypto_header', `the full disk encryption header extension is ${ext.data.length} bytes, not 16 (offset and length of the LUKS header)`, 0);
  const off = Number(ext.data.readBigUInt64BE(0));
  const len = Number(ext.data.readBigUInt64BE(8));
  if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off + len > file.size() || len < 592) {
    throw malformed('crypto_header', `the LUKS header at ${off} (+${len}) lies outside the file`, 0);
  }
  const h = parseLuksHeader(await file.read(off, 592));
  new SectorCipher(h.cipherName, h.cipherMode, Buffer.alloc(h.keyBytes, 1));
  if (ctx.noIO && !ctx.keySecret) return { format: 'luks', physical: true, cipher: null, luks: h };
  // key material offsets count from the LUKS header; the container is the extension's clusters
  const { masterKey } = await unlockLuks(h, key(), Math.max(len, h.payloadOffset * LUKS_SECTOR), (o, n) => file.read(off + o, n));
  return { format: 'luks', physical: true, cipher: new SectorCipher(h.cipherName, h.cipherMode, masterKey), luks: h };
}

/** Decrypt `buf` (whole sectors) in place: data read from host offset `host`, guest offset `guest`. */
export function decryptData(c: Qcow2Crypto, buf: Buffer, host: number, guest: number): void {
  if (!c.cipher) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
  c.cipher.run(false, buf, (c.physical ? host : guest) / LUKS_SECTOR);
}

/** qemu-img info's format-specific "encrypt" of a qcow2 image. */
export function encryptInfo(c: Qcow2Crypto): Record<string, unknown> {
  if (c.format === 'aes' || !c.luks) return { format: 'aes' };
  const d = luksFormatSpecific(c.luks);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) {
    out[k] = v;
    if (k === 'uuid') out.format = 'luks';
  }
  return out;
}

/** Encrypt `buf` (whole sectors) in place for writing at host offset `host`, guest offset `guest`. */
export function encryptData(c: Qcow2Crypto, buf: Buffer, host: number, guest: number): void {
  if (!c.cipher) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
  c.cipher.run(true, buf, (c.physical ? host : guest) / LUKS_SECTOR);
}

/** The encrypt.* create options of qcow2 (schemas/create/qcow2.json), after validation. */
export interface Qcow2EncryptOptions {
  'encrypt.key-secret'?: string;
  'encrypt.cipher-alg'?: string;
  'encrypt.cipher-mode'?: string;
  'encrypt.ivgen-alg'?: string;
  'encrypt.ivgen-hash-alg'?: string;
  'encrypt.hash-alg'?: string;
  'encrypt.iter-time'?: number;
}

/** The passphrase named by encrypt.key-secret, with qemu's words when it is missing. */
export function createKey(o: Qcow2EncryptOptions, secrets: SecretStore | undefined): Buffer {
  const id = o['encrypt.key-secret'];
  if (!id) throw new BlockError('invalid-option', "Parameter 'encrypt.key-secret' is required for cipher", { option: 'encrypt.key-secret' });
  return lookupSecret(secrets ?? new Map(), id, 'encrypt.key-secret');
}

/**
 * A LUKS1 container for a qcow2 image: the header followed by the key slot areas, exactly
 * `length` bytes long (qemu's header length, which is also the LUKS payload offset; the
 * payload itself lives in the qcow2 data clusters). The defaults are qemu's.
 */
export function buildQcow2Luks(o: Qcow2EncryptOptions, pass: Buffer): { container: Buffer; masterKey: Buffer; header: LuksHeader } {
  const cipherAlg = o['encrypt.cipher-alg'] ?? 'aes-256';
  const cipherMode = o['encrypt.cipher-mode'] ?? 'xts';
  const ivgenAlg = o['encrypt.ivgen-alg'] ?? 'plain64';
  const hashAlg = o['encrypt.hash-alg'] ?? 'sha256';
  const bits = /^([a-z0-9]+)-(\d+)$/.exec(cipherAlg);
  if (!bits || !CIPHER_KEY_BYTES[bits[1]]?.includes(Number(bits[2]) / 8)) throw new BlockError('unsupported', `encrypt.cipher-alg '${cipherAlg}' is unsupported by the reference`, { option: 'encrypt.cipher-alg', value: cipherAlg });
  const keyBytes = (Number(bits[2]) / 8) * (cipherMode === 'xts' ? 2 : 1);
  const slotIters = iterationsFor(o['encrypt.iter-time'] ?? 2000, nodeHash(hashAlg), keyBytes);
  const built = buildLuks({
    cipherAlg, cipherMode, ivgenAlg, ivgenHashAlg: ivgenAlg === 'essiv' ? o['encrypt.ivgen-hash-alg'] ?? 'sha256' : undefined,
    hashAlg, iterations: slotIters, mkIterations: Math.max(MIN_ITERATIONS, Math.floor(slotIters / 8)),
  }, pass);
  const container = Buffer.alloc(built.payloadOffset);
  built.header.copy(container, 0);
  built.keyMaterial.copy(container, built.keyMaterialOffset);
  return { container, masterKey: built.masterKey, header: parseLuksHeader(built.header) };
}
