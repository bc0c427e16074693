/**
 * ADC (Apple Data Compression), the LZ77 variant of UDIF chunk type 0x80000004.
 * Each code starts with a byte b:
 *   b & 0x80        a literal run of (b & 0x7f) + 1 bytes follows
 *   b & 0x40        a match of (b & 0x3f) + 4 bytes, distance from the next two bytes (big endian) + 1
 *   otherwise       a match of ((b >> 2) & 0x0f) + 3 bytes, distance ((b & 3) << 8 | next byte) + 1
 * Matches may overlap their own output. Decoding stops at the end of the input and
 * never writes past the end of `out`; the return value is the number of bytes made.
 */
export function adcDecompress(input: Buffer, out: Buffer): number {
  let i = 0;
  let o = 0;
  const need = (n: number) => { if (i + n > input.length) throw new Error(`ADC code at ${i} is cut off by the end of the chunk`); };
  while (i < input.length) {
    const b = input[i++]!;
    if (b & 0x80) {
      const n = (b & 0x7f) + 1;
      need(n);
      if (o + n > out.length) throw new Error(`it decompresses beyond its ${out.length} bytes`);
      input.copy(out, o, i, i + n);
      i += n;
      o += n;
      continue;
    }
    let n: number;
    let dist: number;
    if (b & 0x40) {
      need(2);
      n = (b & 0x3f) + 4;
      dist = ((input[i]! << 8) | input[i + 1]!) + 1;
      i += 2;
    } else {
      need(1);
      n = ((b >> 2) & 0x0f) + 3;
      dist = (((b & 3) << 8) | input[i]!) + 1;
      i += 1;
    }
    if (dist > o) throw new Error(`ADC match at output ${o} reaches ${dist} bytes back, before the chunk's start`);
    if (o + n > out.length) throw new Error(`it decompresses beyond its ${out.length} bytes`);
    for (let k = 0; k < n; k++, o++) out[o] = out[o - dist]!;
  }
  return o;
}
