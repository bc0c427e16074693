import type { BlockCipher } from './types.js';

/*
 * Twofish (Schneier, Kelsey, Whiting, Wagner, Hall, Ferguson, "Twofish: A 128-Bit Block
 * Cipher", 1998), in the byte order of the paper, Linux and nettle: key and block are
 * little-endian 32-bit words. The key-dependent S-boxes are folded with the MDS matrix into
 * four 256-entry word tables when the key is set, so g() is four lookups.
 */

// the 4-bit permutations t0..t3 that build q0 and q1 (paper section 4.3.5)
const Q_T = [
  [[8, 1, 7, 13, 6, 15, 3, 2, 0, 11, 5, 9, 14, 12, 10, 4], [14, 12, 11, 8, 1, 2, 3, 5, 15, 4, 10, 6, 7, 0, 9, 13],
    [11, 10, 5, 14, 6, 13, 9, 0, 12, 8, 15, 3, 2, 4, 7, 1], [13, 7, 15, 4, 1, 2, 6, 14, 9, 11, 3, 0, 8, 5, 12, 10]],
  [[2, 8, 11, 13, 15, 7, 6, 14, 3, 1, 9, 4, 0, 10, 12, 5], [1, 14, 2, 11, 4, 12, 3, 7, 6, 13, 10, 5, 15, 9, 0, 8],
    [4, 12, 7, 5, 1, 6, 9, 10, 0, 14, 13, 8, 2, 11, 3, 15], [11, 9, 5, 1, 12, 3, 13, 14, 6, 4, 7, 15, 2, 0, 8, 10]],
];
const ror4 = (x: number): number => ((x >>> 1) | (x << 3)) & 15;
function buildQ(t: number[][]): Uint8Array {
  const q = new Uint8Array(256);
  for (let x = 0; x < 256; x++) {
    let a = x >>> 4, b = x & 15;
    const a1 = a ^ b, b1 = a ^ ror4(b) ^ ((8 * a) & 15);
    a = t[0][a1]; b = t[1][b1];
    const a3 = a ^ b, b3 = a ^ ror4(b) ^ ((8 * a) & 15);
    q[x] = (t[3][b3] << 4) | t[2][a3];
  }
  return q;
}
const Q0 = buildQ(Q_T[0]);
const Q1 = buildQ(Q_T[1]);

/** multiplication in GF(2^8) modulo the given primitive polynomial */
function gfMul(a: number, b: number, poly: number): number {
  let r = 0;
  while (b) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= poly;
    b >>>= 1;
  }
  return r;
}
const MDS = [[0x01, 0xef, 0x5b, 0x5b], [0x5b, 0xef, 0xef, 0x01], [0xef, 0x5b, 0x01, 0xef], [0xef, 0x01, 0xef, 0x5b]];
const RS = [
  [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e], [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
  [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19], [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];

const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
const ror = (x: number, n: number): number => ((x >>> n) | (x << (32 - n))) >>> 0;

/** the S-box chain of h() for byte position j, keyed by the list `l` (k words) */
function hByte(j: number, x: number, l: number[]): number {
  const b = (w: number): number => (w >>> (8 * j)) & 0xff;
  const k = l.length;
  let y = x;
  // q choices per position and stage, from the paper's figure of h
  if (k === 4) y = [Q1, Q0, Q0, Q1][j][y] ^ b(l[3]);
  if (k >= 3) y = [Q1, Q1, Q0, Q0][j][y] ^ b(l[2]);
  y = [Q0, Q1, Q0, Q1][j][y] ^ b(l[1]);
  y = [Q0, Q0, Q1, Q1][j][y] ^ b(l[0]);
  return [Q1, Q0, Q1, Q0][j][y];
}

function mdsColumn(j: number, y: number): number {
  let z = 0;
  for (let i = 0; i < 4; i++) z |= gfMul(MDS[i][j], y, 0x169) << (8 * i);
  return z >>> 0;
}

function h(x: number, l: number[]): number {
  let z = 0;
  for (let j = 0; j < 4; j++) z ^= mdsColumn(j, hByte(j, (x >>> (8 * j)) & 0xff, l));
  return z >>> 0;
}

export class Twofish implements BlockCipher {
  readonly blockSize = 16;
  private readonly k = new Uint32Array(40);
  private readonly t: Uint32Array[] = [];

  constructor(key: Uint8Array) {
    if (![16, 24, 32].includes(key.length)) throw new RangeError(`twofish key of ${key.length} bytes`);
    const k = key.length / 8;
    const word = (i: number): number => (key[4 * i] | (key[4 * i + 1] << 8) | (key[4 * i + 2] << 16) | (key[4 * i + 3] << 24)) >>> 0;
    const me: number[] = [], mo: number[] = [], s: number[] = [];
    for (let i = 0; i < k; i++) {
      me.push(word(2 * i));
      mo.push(word(2 * i + 1));
      let v = 0;
      for (let r = 0; r < 4; r++) {
        let acc = 0;
        for (let c = 0; c < 8; c++) acc ^= gfMul(RS[r][c], key[8 * i + c], 0x14d);
        v |= acc << (8 * r);
      }
      s.unshift(v >>> 0); // S is used in reverse order: S_{k-1} .. S_0
    }
    const rho = 0x01010101;
    for (let i = 0; i < 20; i++) {
      const a = h(Math.imul(2 * i, rho) >>> 0, me);
      const b = rol(h(Math.imul(2 * i + 1, rho) >>> 0, mo), 8);
      this.k[2 * i] = (a + b) >>> 0;
      this.k[2 * i + 1] = rol((a + 2 * b) >>> 0, 9);
    }
    for (let j = 0; j < 4; j++) {
      const t = new Uint32Array(256);
      for (let x = 0; x < 256; x++) t[x] = mdsColumn(j, hByte(j, x, s));
      this.t.push(t);
    }
  }

  private g(x: number): number {
    const t = this.t;
    return (t[0][x & 0xff] ^ t[1][(x >>> 8) & 0xff] ^ t[2][(x >>> 16) & 0xff] ^ t[3][x >>> 24]) >>> 0;
  }

  private block(buf: Uint8Array, off: number, encrypt: boolean): void {
    const dv = new DataView(buf.buffer, buf.byteOffset + off, 16);
    const K = this.k;
    const w0 = encrypt ? 0 : 4, w1 = encrypt ? 4 : 0;
    let r0 = dv.getUint32(0, true) ^ K[w0], r1 = dv.getUint32(4, true) ^ K[w0 + 1];
    let r2 = dv.getUint32(8, true) ^ K[w0 + 2], r3 = dv.getUint32(12, true) ^ K[w0 + 3];
    for (let n = 0; n < 16; n++) {
      const r = encrypt ? n : 15 - n;
      const t0 = this.g(r0), t1 = this.g(rol(r1, 8));
      const f0 = (t0 + t1 + K[2 * r + 8]) >>> 0;
      const f1 = (t0 + 2 * t1 + K[2 * r + 9]) >>> 0;
      let n2: number, n3: number;
      if (encrypt) {
        n2 = ror((r2 ^ f0) >>> 0, 1);
        n3 = (rol(r3, 1) ^ f1) >>> 0;
      } else {
        n2 = (rol(r2, 1) ^ f0) >>> 0;
        n3 = ror((r3 ^ f1) >>> 0, 1);
      }
      r2 = r0; r3 = r1; r0 = n2; r1 = n3;
    }
    // the last round's swap is undone
    dv.setUint32(0, (r2 ^ K[w1]) >>> 0, true);
    dv.setUint32(4, (r3 ^ K[w1 + 1]) >>> 0, true);
    dv.setUint32(8, (r0 ^ K[w1 + 2]) >>> 0, true);
    dv.setUint32(12, (r1 ^ K[w1 + 3]) >>> 0, true);
  }

  encrypt(buf: Uint8Array): void {
    for (let o = 0; o < buf.length; o += 16) this.block(buf, o, true);
  }

  decrypt(buf: Uint8Array): void {
    for (let o = 0; o < buf.length; o += 16) this.block(buf, o, false);
  }
}
