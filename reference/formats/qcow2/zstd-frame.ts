/**
 * Length of the first zstd frame in a buffer (RFC 8878, section 3.1.1).
 * qcow2 packs compressed clusters back to back, so the bytes read for one
 * cluster usually run into the next one's frame; the decoder must be given
 * exactly one frame.
 */
import { BlockError } from '../../errors.js';

export function zstdFrameLength(buf: Buffer): number {
  const fail = (why: string) => new BlockError('corrupt', `zstd-compressed cluster: ${why}`);
  if (buf.length < 6 || buf.readUInt32LE(0) !== 0xfd2fb528) throw fail('no zstd frame magic');
  const fhd = buf[4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag];
  let pos = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
  for (;;) {
    if (pos + 3 > buf.length) throw fail('frame runs past the compressed data');
    const h = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16);
    const last = h & 1;
    const type = (h >> 1) & 3;
    const size = h >>> 3;
    if (type === 3) throw fail('reserved block type');
    pos += 3 + (type === 1 ? 1 : size); // an RLE block stores one byte
    if (last) break;
  }
  pos += checksum ? 4 : 0;
  if (pos > buf.length) throw fail('frame runs past the compressed data');
  return pos;
}
