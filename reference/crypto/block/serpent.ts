import type { BlockCipher } from './types.js';

/*
 * Serpent (Anderson, Biham, Knudsen, AES submission), in the byte order Linux's serpent_generic
 * and nettle use: the 128-bit block and the key are little-endian 32-bit words, word 0 holding
 * bit 0 of every nibble the S-boxes see (the "bitslice" description of the spec). Keys shorter
 * than 256 bits are padded with a single 1 bit and then zeros.
 *
 * This is written for clarity rather than speed: each S-box is applied through a 16-entry
 * table one bit column at a time.
 */
const SBOX: number[][] = [
  [3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12],
  [15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4],
  [8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2],
  [0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14],
  [1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13],
  [15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1],
  [7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0],
  [1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6],
];
const INV: number[][] = SBOX.map((s) => {
  const inv = new Array<number>(16);
  s.forEach((v, i) => (inv[v] = i));
  return inv;
});
const PHI = 0x9e3779b9;

const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
const ror = (x: number, n: number): number => ((x >>> n) | (x << (32 - n))) >>> 0;

/** apply a 4-bit S-box to the four words `w[o..o+3]` bit column by bit column */
function sbox(table: number[], w: Uint32Array, o: number): void {
  let a = 0, b = 0, c = 0, d = 0;
  const x0 = w[o], x1 = w[o + 1], x2 = w[o + 2], x3 = w[o + 3];
  for (let i = 0; i < 32; i++) {
    const v = table[((x0 >>> i) & 1) | (((x1 >>> i) & 1) << 1) | (((x2 >>> i) & 1) << 2) | (((x3 >>> i) & 1) << 3)];
    a |= (v & 1) << i;
    b |= ((v >>> 1) & 1) << i;
    c |= ((v >>> 2) & 1) << i;
    d |= ((v >>> 3) & 1) << i;
  }
  w[o] = a; w[o + 1] = b; w[o + 2] = c; w[o + 3] = d;
}

function lt(w: Uint32Array): void {
  let x0 = rol(w[0], 13), x2 = rol(w[2], 3);
  let x1 = (w[1] ^ x0 ^ x2) >>> 0;
  let x3 = (w[3] ^ x2 ^ (x0 << 3)) >>> 0;
  x1 = rol(x1, 1); x3 = rol(x3, 7);
  x0 = (x0 ^ x1 ^ x3) >>> 0;
  x2 = (x2 ^ x3 ^ (x1 << 7)) >>> 0;
  w[0] = rol(x0, 5); w[1] = x1; w[2] = rol(x2, 22); w[3] = x3;
}

function ltInv(w: Uint32Array): void {
  let x0 = ror(w[0], 5), x2 = ror(w[2], 22);
  let x1 = w[1], x3 = w[3];
  x2 = (x2 ^ x3 ^ (x1 << 7)) >>> 0;
  x0 = (x0 ^ x1 ^ x3) >>> 0;
  x3 = ror(x3, 7); x1 = ror(x1, 1);
  x3 = (x3 ^ x2 ^ (x0 << 3)) >>> 0;
  x1 = (x1 ^ x0 ^ x2) >>> 0;
  w[0] = ror(x0, 13); w[1] = x1; w[2] = ror(x2, 3); w[3] = x3;
}

export class Serpent implements BlockCipher {
  readonly blockSize = 16;
  private readonly k = new Uint32Array(33 * 4);

  constructor(key: Uint8Array) {
    if (key.length < 1 || key.length > 32) throw new RangeError(`serpent key of ${key.length} bytes`);
    const pad = new Uint8Array(32);
    pad.set(key);
    if (key.length < 32) pad[key.length] = 1;
    const w = new Uint32Array(140);
    for (let i = 0; i < 8; i++) w[i] = pad[4 * i] | (pad[4 * i + 1] << 8) | (pad[4 * i + 2] << 16) | (pad[4 * i + 3] << 24);
    for (let i = 8; i < 140; i++) w[i] = rol((w[i - 8] ^ w[i - 5] ^ w[i - 3] ^ w[i - 1] ^ PHI ^ (i - 8)) >>> 0, 11);
    this.k.set(w.subarray(8));
    // round key i goes through S-box (3 - i) mod 8
    for (let i = 0; i < 33; i++) sbox(SBOX[(((3 - i) % 8) + 8) % 8], this.k, 4 * i);
  }

  private block(buf: Uint8Array, off: number, encrypt: boolean): void {
    const dv = new DataView(buf.buffer, buf.byteOffset + off, 16);
    const w = new Uint32Array(4);
    for (let i = 0; i < 4; i++) w[i] = dv.getUint32(4 * i, true);
    const k = this.k;
    const mix = (r: number): void => { for (let i = 0; i < 4; i++) w[i] ^= k[4 * r + i]; };
    if (encrypt) {
      for (let r = 0; r < 32; r++) {
        mix(r);
        sbox(SBOX[r % 8], w, 0);
        if (r < 31) lt(w); else mix(32);
      }
    } else {
      for (let r = 31; r >= 0; r--) {
        if (r < 31) ltInv(w); else mix(32);
        sbox(INV[r % 8], w, 0);
        mix(r);
      }
    }
    for (let i = 0; i < 4; i++) dv.setUint32(4 * i, w[i], true);
  }

  encrypt(buf: Uint8Array): void {
    for (let o = 0; o < buf.length; o += 16) this.block(buf, o, true);
  }

  decrypt(buf: Uint8Array): void {
    for (let o = 0; o < buf.length; o += 16) this.block(buf, o, false);
  }
}
