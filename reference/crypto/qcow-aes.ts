/**
 * The legacy AES encryption of qcow and qcow2 (encryption=on / encrypt.format=aes), kept
 * for data liberation: AES-128-CBC over 512-byte sectors, the IV being the guest sector
 * number (plain64), the key the first 16 bytes of the passphrase, zero padded (qemu's
 * crypto/block-qcow.c). Unlike LUKS in qcow2, the IV follows the guest offset, not the host's.
 */
import { SectorCipher } from './luks1.js';

export function legacyAesCipher(passphrase: Buffer): SectorCipher {
  const key = Buffer.alloc(16);
  passphrase.copy(key, 0, 0, Math.min(16, passphrase.length));
  return new SectorCipher('aes', 'cbc-plain64', key);
}
