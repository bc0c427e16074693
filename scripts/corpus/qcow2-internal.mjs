#!/usr/bin/env node
/**
 * Producer of the corpus's qcow2 images with internal snapshots or persistent
 * bitmaps: real qemu-img / qemu-io, run with argument arrays (never a shell).
 *   node scripts/corpus/qcow2-internal.mjs snapshots|bitmaps|combined IMAGE
 */
import { execFileSync } from 'node:child_process';

const [kind, image] = process.argv.slice(2);
const run = (cmd, ...args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
const io = (...cmds) => run('qemu-io', '-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), image);

if (kind === 'snapshots') {
  // two snapshots sharing clusters with each other and with the active disk, one written over
  run('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', image, '1M');
  io('write -P 0x11 0 64k', 'write -c -P 0x12 512k 4k');
  run('qemu-img', 'snapshot', '-c', 'first', image);
  io('write -P 0x22 32k 64k');
  run('qemu-img', 'snapshot', '-c', 'second', image);
  io('write -P 0x33 960k 64k', 'write -z 0 8k');
} else if (kind === 'bitmaps') {
  // an enabled bitmap that recorded a write, and a disabled one that did not
  run('qemu-img', 'create', '-q', '-f', 'qcow2', image, '1M');
  run('qemu-img', 'bitmap', '--add', image, 'b0');
  run('qemu-img', 'bitmap', '--add', '-g', '128k', '--disable', image, 'b1');
  io('write -P 0x44 100k 64k');
} else if (kind === 'combined') {
  // issue 3's Done-when image: zstd-compressed clusters, a cluster with allocated, zero and
  // unallocated subclusters, an enabled bitmap, and a snapshot the active layer has moved on from
  run('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,compression_type=zstd', image, '4M');
  io('write -c -P 0x31 0 64k', 'write -c -P 0x32 64k 64k', 'write -P 0x41 1032k 4k', 'write -z 1040k 4k');
  run('qemu-img', 'bitmap', '--add', image, 'b0');
  run('qemu-img', 'snapshot', '-c', 's1', image);
  io('write -P 0x51 0 64k', 'write -P 0x52 2M 4k');
} else {
  process.stderr.write(`usage: qcow2-internal.mjs snapshots|bitmaps|combined IMAGE (got ${kind})\n`);
  process.exit(2);
}
