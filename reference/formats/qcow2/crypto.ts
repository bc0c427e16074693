/**
 * Decrypting an encrypted qcow2 image's data clusters (data liberation):
 *
 * - crypt_method 1, legacy AES (encrypt.format=aes): AES-128-CBC per 512-byte sector, the key
 *   the passphrase itself, the IV the guest sector number;
 * - crypt_method 2, LUKS (encrypt.format=luks): a LUKS1 header and key slots in clusters named
 *   by the crypt header extension (offset, length); the sector cipher's IV is the *host*
 *   sector number of the data (QEMU's crypt_physical_offset).
 *
 * The reference reads such images (and qemu-img info shows them without a key); writing
 * them is not implemented yet and refused.
 */
import { BlockError, malformed } from '../../errors.js';
import { LUKS_SECTOR, parseLuksHeader, SectorCipher, unlockLuks, type LuksHeader } from '../../crypto/luks1.js';
import { legacyAesCipher } from '../../crypto/qcow-aes.js';
import { lookupSecret, type SecretStore } from '../../crypto/secret.js';
import type { BlockNode } from '../../node.js';
import { EXT_CRYPTO_HEADER, type HeaderExtension } from './layout.js';
import { luksFormatSpecific } from '../luks.js';

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
  if (!ext || ext.data.length < 16) throw malformed('crypto_header', 'a LUKS-encrypted qcow2 image needs the full disk encryption header extension', 32);
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
