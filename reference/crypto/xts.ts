/**
 * XTS (IEEE 1619) over whole 512-byte sectors around an ECB cipher with 16-byte blocks.
 * Block j of a sector is masked with T x alpha^j (T = the sector's encrypted tweak; GF(2^128),
 * little endian, reduction 0x87) before and after the ECB pass. Sectors are whole blocks, so
 * there is no ciphertext stealing.
 *
 * Why not node's own aes-xts: it takes the tweak as the IV, so each 512-byte sector needs a
 * cipher object of its own (a key schedule and a native call per sector), which costs more
 * than the cipher work itself. Here the whole request goes through one long-lived ECB cipher
 * in one call, and only the mask arithmetic is JavaScript, on 32-bit words.
 */
import { endianness } from 'node:os';

const SECTOR = 512;
const BLOCKS = SECTOR / 16;
/** (the word arithmetic reads little-endian words; other hosts take the byte loop) */
const LE = endianness() === 'LE';

/**
 * XOR every block of `w` (sector words) with its mask: the sector tweaks in `tw` (4 words each),
 * multiplied by alpha from block to block.
 */
function maskWords(w: Uint32Array, tw: Uint32Array): void {
  for (let s = 0, i = 0; s < tw.length; s += 4) {
    let t0 = tw[s], t1 = tw[s + 1], t2 = tw[s + 2], t3 = tw[s + 3];
    for (let b = 0; b < BLOCKS; b++, i += 4) {
      w[i] ^= t0; w[i + 1] ^= t1; w[i + 2] ^= t2; w[i + 3] ^= t3;
      // multiply by alpha: shift the 128-bit little-endian value left by one
      const carry = t3 >>> 31;
      t3 = (t3 << 1) | (t2 >>> 31);
      t2 = (t2 << 1) | (t1 >>> 31);
      t1 = (t1 << 1) | (t0 >>> 31);
      t0 = (t0 << 1) ^ (carry * 0x87);
    }
  }
}

/** the same masking a byte at a time, for big-endian hosts */
function maskBytes(data: Uint8Array, tweaks: Uint8Array): void {
  const t = new Uint8Array(16);
  for (let s = 0; s < tweaks.length / 16; s++) {
    t.set(tweaks.subarray(s * 16, s * 16 + 16));
    for (let b = 0; b < BLOCKS; b++) {
      const o = s * SECTOR + b * 16;
      for (let i = 0; i < 16; i++) data[o + i] ^= t[i];
      let carry = 0;
      for (let i = 0; i < 16; i++) {
        const v = t[i];
        t[i] = ((v << 1) | carry) & 0xff;
        carry = v >>> 7;
      }
      if (carry) t[0] ^= 0x87;
    }
  }
}

/** bytes per mask-cipher-mask round: small enough for a core's L2 cache, large enough that the native call costs nothing */
const PIECE = 64 * 1024;

const words = (b: Uint8Array): Uint32Array => new Uint32Array(b.buffer, b.byteOffset, b.length / 4);

/**
 * En/decrypt `data` (whole sectors) in place: `tweaks` holds each sector's encrypted tweak (16
 * bytes a sector), `ecb` en/decrypts a buffer of blocks in place.
 */
export function xtsSectors(data: Uint8Array, tweaks: Uint8Array, ecb: (buf: Uint8Array) => void): void {
  if (!LE) {
    maskBytes(data, tweaks);
    ecb(data);
    maskBytes(data, tweaks);
    return;
  }
  // word views need 4-byte alignment; a Buffer from node's pool may start anywhere
  const work = data.byteOffset % 4 === 0 ? data : new Uint8Array(data);
  const tw = words(tweaks.byteOffset % 4 === 0 ? tweaks : new Uint8Array(tweaks));
  // a piece at a time, so the three passes over it (mask, cipher, mask) stay in the cache
  for (let o = 0; o < work.length; o += PIECE) {
    const piece = work.subarray(o, o + PIECE);
    const w = words(piece);
    const t = tw.subarray(o / 128, (o + piece.length) / 128);
    maskWords(w, t);
    ecb(piece);
    maskWords(w, t);
  }
  if (work !== data) data.set(work);
}
