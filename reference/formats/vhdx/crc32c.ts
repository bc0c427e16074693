/**
 * CRC-32C (Castagnoli), the checksum of every VHDX header, region table and
 * log entry: reflected polynomial 0x82f63b78, initial value and final xor all
 * ones. The 256-entry table is built here once from the polynomial.
 */
const POLY = 0x82f63b78;

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Running CRC state over more pieces: start with 0xffffffff, finish with `~state >>> 0`. */
export function crc32cUpdate(state: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let c = state >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

export function crc32c(buf: Uint8Array): number {
  return ~crc32cUpdate(0xffffffff, buf) >>> 0;
}

/** CRC-32C of `buf` with its 4-byte checksum field at `at` counted as zero. */
export function crc32cWithHole(buf: Uint8Array, at: number): number {
  let c = crc32cUpdate(0xffffffff, buf, 0, at);
  c = crc32cUpdate(c, ZERO4);
  c = crc32cUpdate(c, buf, at + 4, buf.length);
  return ~c >>> 0;
}

const ZERO4 = new Uint8Array(4);

/** Writes the checksum of `buf` (field at `at`, little endian) in place. */
export function sealCrc(buf: Buffer, at: number): number {
  const c = crc32cWithHole(buf, at);
  buf.writeUInt32LE(c, at);
  return c;
}
