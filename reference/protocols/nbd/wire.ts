/** Big-endian 64-bit fields of the NBD wire format (the socket reader is ../socket-reader.ts). */
export function u64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.POSITIVE_INFINITY;
  return Number(v);
}

export function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeBigUInt64BE(BigInt(v), at);
}
