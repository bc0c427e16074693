/**
 * Cluster compression for qcow2: raw deflate with a 4 KiB window (QEMU's zlib
 * settings) or one zstd frame (compression_type=zstd). Node's zlib does
 * deflate; zstd comes from fzstd (decode) and libzstd built to wasm (encode).
 */
import * as zlib from 'node:zlib';
import { decompress as zstdDecode } from 'fzstd';
import { BlockError } from '../../errors.js';
import { zstdFrameLength } from './zstd-frame.js';

export const COMPRESSION_ZLIB = 0;
export const COMPRESSION_ZSTD = 1;

/** libzstd (wasm) is loaded on first use: most images never need it. */
let zstdEncoder: Promise<{ compress(data: Uint8Array, level: number): Uint8Array }> | null = null;
function encoder() {
  zstdEncoder ??= import('@bokuweb/zstd-wasm').then(async (m) => {
    const z = (m as unknown as { default?: typeof m }).default ?? m;
    await z.init();
    return z;
  });
  return zstdEncoder;
}

/** Compressed form of one cluster, or null when it would not be smaller (QEMU then writes it plainly). */
export async function compressCluster(type: number, data: Buffer): Promise<Buffer | null> {
  let out: Buffer;
  if (type === COMPRESSION_ZSTD) {
    out = Buffer.from((await encoder()).compress(data, 3));
  } else {
    out = zlib.deflateRawSync(data, { level: zlib.constants.Z_DEFAULT_COMPRESSION, windowBits: 12, memLevel: 9 });
  }
  // QEMU compresses into a buffer one byte short of a cluster.
  return out.length < data.length ? out : null;
}

/** Inflate the compressed bytes of one cluster; errors name the host offset. */
export function decompressCluster(type: number, raw: Buffer, clusterSize: number, host: number): Buffer {
  let data: Buffer;
  try {
    if (type === COMPRESSION_ZSTD) {
      // qcow2 packs frames back to back: hand the decoder exactly one.
      data = Buffer.from(zstdDecode(raw.subarray(0, zstdFrameLength(raw))));
    } else {
      // The stream may be followed by padding; stop at the cluster size.
      data = zlib.inflateRawSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: clusterSize });
    }
  } catch (err) {
    if (err instanceof BlockError) throw err;
    throw new BlockError('corrupt', `compressed cluster at 0x${host.toString(16)} does not decompress: ${(err as Error).message}`, { offset: host });
  }
  if (data.length > clusterSize) {
    throw new BlockError('corrupt', `compressed cluster at 0x${host.toString(16)} inflates beyond the cluster size`, { offset: host });
  }
  return data.length < clusterSize ? Buffer.concat([data, Buffer.alloc(clusterSize - data.length)]) : data;
}
