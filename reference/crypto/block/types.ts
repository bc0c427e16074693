/**
 * The small interface the LUKS sector modes (ecb, cbc, ctr, xts) drive: a keyed block cipher
 * that en/decrypts a whole buffer of blocks in ECB fashion, in place. Whole-buffer calls let
 * aes keep node's native ECB while hand-written ciphers loop over blocks.
 */
export interface BlockCipher {
  readonly blockSize: number;
  /** ECB-encrypt `buf` (a whole number of blocks) in place */
  encrypt(buf: Uint8Array): void;
  /** ECB-decrypt `buf` (a whole number of blocks) in place */
  decrypt(buf: Uint8Array): void;
  /**
   * Optional: CBC-encrypt each `sectorSize`-byte sector of `buf` in place, sector i chained
   * from the IV at ivs[i * blockSize]. CBC encryption is serial within a sector, so a cipher
   * with a native CBC (aes) does a sector per call instead of a call per block.
   */
  cbcEncrypt?(buf: Uint8Array, ivs: Uint8Array, sectorSize: number): void;
}
