import type { BlockCipher } from './types.js';
import { S1, S2, S3, S4, S5, S6, S7, S8 } from './cast5-sboxes.js';

/*
 * CAST-128, alias CAST5 (RFC 2144), with a 128-bit key: the only size qemu 7.2 names
 * (cast5-128). A Feistel cipher on 64-bit blocks read as two big-endian words L and R;
 * 16 rounds of three round-function types, each keyed by a 32-bit masking subkey Km and a
 * 5-bit rotation Kr. Keys shorter than 80 bits would take 12 rounds; 128 bits always takes 16.
 */

const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;

/** the big-endian word `w` (0..3) of a 16-byte array */
const word = (b: Uint8Array, w: number): number => ((b[4 * w] << 24) | (b[4 * w + 1] << 16) | (b[4 * w + 2] << 8) | b[4 * w + 3]) >>> 0;
function setWord(b: Uint8Array, w: number, v: number): void {
  b[4 * w] = v >>> 24; b[4 * w + 1] = v >>> 16; b[4 * w + 2] = v >>> 8; b[4 * w + 3] = v;
}

/*
 * The key schedule (RFC 2144 section 2.4) alternates two 128-bit states, x (the key at first)
 * and z. Each step rewrites one state from the other, a word at a time, in one common shape:
 *   dst word i = src word from[i] ^ S5[a] ^ S6[b] ^ S7[c] ^ S8[d] ^ (S7, S8, S5, S6)[i][src byte extra[i]]
 * where a..d are bytes of src for word 0 (dst holds nothing yet) and bytes of the dst words
 * just written for words 1..3 (the same byte choices in both directions).
 */
interface Step { from: number[]; first: number[]; extra: number[] }
const X_TO_Z: Step = { from: [0, 2, 3, 1], first: [0xd, 0xf, 0xc, 0xe], extra: [0x8, 0xa, 0x9, 0xb] };
const Z_TO_X: Step = { from: [2, 0, 1, 3], first: [0x5, 0x7, 0x4, 0x6], extra: [0x0, 0x2, 0x1, 0x3] };
const LATER = [[0x0, 0x2, 0x1, 0x3], [0x7, 0x6, 0x5, 0x4], [0xa, 0x9, 0xb, 0x8]];
const EXTRA_BOX = [S7, S8, S5, S6];

function step(s: Step, src: Uint8Array, dst: Uint8Array): void {
  for (let i = 0; i < 4; i++) {
    const t = i === 0 ? src : dst, p = i === 0 ? s.first : LATER[i - 1];
    setWord(dst, i, (word(src, s.from[i]) ^ S5[t[p[0]]] ^ S6[t[p[1]]] ^ S7[t[p[2]]] ^ S8[t[p[3]]] ^ EXTRA_BOX[i][src[s.extra[i]]]) >>> 0);
  }
}

/*
 * After each step four subkeys come out of the state just written, subkey j (0..3) as
 *   S5[a] ^ S6[b] ^ S7[c] ^ S8[d] ^ (S5, S6, S7, S8)[j][e]
 * with bytes a..e of that state chosen by the step's pattern below (in step order); the
 * four steps give K1..K16 and, run again from where they stopped, K17..K32.
 */
const PATTERNS = [
  [[0x8, 0x9, 0x7, 0x6, 0x2], [0xa, 0xb, 0x5, 0x4, 0x6], [0xc, 0xd, 0x3, 0x2, 0x9], [0xe, 0xf, 0x1, 0x0, 0xc]],
  [[0x3, 0x2, 0xc, 0xd, 0x8], [0x1, 0x0, 0xe, 0xf, 0xd], [0x7, 0x6, 0x8, 0x9, 0x3], [0x5, 0x4, 0xa, 0xb, 0x7]],
  [[0x3, 0x2, 0xc, 0xd, 0x9], [0x1, 0x0, 0xe, 0xf, 0xc], [0x7, 0x6, 0x8, 0x9, 0x2], [0x5, 0x4, 0xa, 0xb, 0x6]],
  [[0x8, 0x9, 0x7, 0x6, 0x3], [0xa, 0xb, 0x5, 0x4, 0x7], [0xc, 0xd, 0x3, 0x2, 0x8], [0xe, 0xf, 0x1, 0x0, 0xd]],
];
const KEY_BOX = [S5, S6, S7, S8];

/** the four subkeys of `pattern` from state `t`, into out[at..at+3] */
function subkeys(pattern: number[][], t: Uint8Array, out: Uint32Array, at: number): void {
  for (let j = 0; j < 4; j++) {
    const p = pattern[j];
    out[at + j] = S5[t[p[0]]] ^ S6[t[p[1]]] ^ S7[t[p[2]]] ^ S8[t[p[3]]] ^ KEY_BOX[j][t[p[4]]];
  }
}

export class Cast5 implements BlockCipher {
  readonly blockSize = 8;
  /** masking subkeys Km1..Km16 */
  private readonly km = new Uint32Array(16);
  /** rotation subkeys Kr1..Kr16 (the low five bits of K17..K32) */
  private readonly kr = new Uint8Array(16);

  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new RangeError(`cast5-128 takes a 16-byte key, not ${key.length} bytes`);
    const x = new Uint8Array(16), z = new Uint8Array(16), k = new Uint32Array(32);
    x.set(key);
    for (let n = 0; n < 8; n++) {
      // steps alternate x -> z and z -> x; the subkeys come from the state just written
      if (n % 2 === 0) step(X_TO_Z, x, z);
      else step(Z_TO_X, z, x);
      subkeys(PATTERNS[n % 4], n % 2 === 0 ? z : x, k, 4 * n);
    }
    for (let i = 0; i < 16; i++) {
      this.km[i] = k[i];
      this.kr[i] = k[16 + i] & 31;
    }
  }

  /** f of round `r` (0-based): its type is r mod 3 (RFC 2144 section 2.2) */
  private f(r: number, d: number): number {
    const km = this.km[r], kr = this.kr[r];
    const type = r % 3;
    const i = rol(type === 0 ? (km + d) >>> 0 : type === 1 ? (km ^ d) >>> 0 : (km - d) >>> 0, kr);
    const a = S1[i >>> 24], b = S2[(i >>> 16) & 0xff], c = S3[(i >>> 8) & 0xff], e = S4[i & 0xff];
    if (type === 0) return (((a ^ b) - c) + e) >>> 0;
    if (type === 1) return (((a - b) + c) ^ e) >>> 0;
    return (((a + b) ^ c) - e) >>> 0;
  }

  /** One block at `o`: the rounds in order to encrypt, in reverse to decrypt; the halves swap at the end. */
  private block(buf: Uint8Array, o: number, encrypt: boolean): void {
    let l = ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
    let r = ((buf[o + 4] << 24) | (buf[o + 5] << 16) | (buf[o + 6] << 8) | buf[o + 7]) >>> 0;
    for (let n = 0; n < 16; n++) {
      const t = (l ^ this.f(encrypt ? n : 15 - n, r)) >>> 0;
      l = r;
      r = t;
    }
    buf[o] = r >>> 24; buf[o + 1] = r >>> 16; buf[o + 2] = r >>> 8; buf[o + 3] = r;
    buf[o + 4] = l >>> 24; buf[o + 5] = l >>> 16; buf[o + 6] = l >>> 8; buf[o + 7] = l;
  }

  encrypt(buf: Uint8Array): void {
    for (let o = 0; o < buf.length; o += 8) this.block(buf, o, true);
  }

  decrypt(buf: Uint8Array): void {
    for (let o = 0; o < buf.length; o += 8) this.block(buf, o, false);
  }
}
