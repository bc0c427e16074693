/**
 * vmdk pieces the scenarios do not reach: stream-optimized images whose grain
 * directory is found through the footer (as VMware writes them in one pass),
 * VMFSSPARSE ("COWD") extents behind a vmfsSparse descriptor, the descriptor
 * parser's refusals and probe, and mutation fuzzing of the reader (open, read,
 * map and check either work or fail with a typed BlockError). Crafted files are
 * cross-checked by real qemu-img where it is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { BlockError } from '../reference/errors.js';
import { openImage } from '../reference/graph/open.js';
import { checkImage } from '../reference/tools/check.js';
import { mapImage } from '../reference/tools/map.js';
import { parseDescriptor, parseExtentLines } from '../reference/formats/vmdk/descriptor.js';
import { probeVmdk } from '../reference/formats/vmdk/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const images = path.join(root, 'corpus', 'images');
const hasQemu = (() => {
  try {
    return fs.statSync('/usr/bin/qemu-img').isFile();
  } catch {
    return false;
  }
})();

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vmdk-'));
}

async function guest(file: string): Promise<Buffer> {
  const node = await openImage(file, { readOnly: true });
  try {
    return await node.read(0, node.size());
  } finally {
    await node.close();
  }
}

/** The first 4 MiB at most (a mutated capacity may claim petabytes). */
async function guestHead(file: string): Promise<void> {
  const node = await openImage(file, { readOnly: true });
  try {
    await node.read(0, Math.min(node.size(), 4 << 20));
  } finally {
    await node.close();
  }
}

async function qemuGuest(file: string, dir: string): Promise<Buffer> {
  const out = path.join(dir, 'qemu-guest.raw');
  await execa('qemu-img', ['convert', '-O', 'raw', file, out], { timeout: 60_000 });
  return fs.readFileSync(out);
}

test('a stream-optimized image whose grain directory is given by its footer reads as the original', async () => {
  const dir = scratch();
  try {
    const orig = path.join(images, 'vmdk-stream-optimized.vmdk');
    const buf = fs.readFileSync(orig);
    const header = Buffer.from(buf.subarray(0, 512));
    const moved = Buffer.from(buf);
    moved.writeBigUInt64LE(0xffffffffffffffffn, 0x38); // gd offset: see the footer
    const tail = Buffer.alloc(1536);
    tail.writeUInt32LE(3, 12); // footer marker
    header.copy(tail, 512);
    // (the end-of-stream marker is all zeroes)
    const file = path.join(dir, 'footer.vmdk');
    fs.writeFileSync(file, Buffer.concat([moved, Buffer.alloc((512 - (moved.length % 512)) % 512), tail]));
    const want = await guest(orig);
    assert.ok(want.equals(await guest(file)), 'guest bytes through the footer');
    if (hasQemu) assert.ok(want.equals(await qemuGuest(file, dir)), 'qemu-img reads the crafted file the same');
    // a footer that is not one is refused
    const broken = Buffer.from(fs.readFileSync(file));
    broken.writeUInt32LE(7, broken.length - 1536 + 12);
    fs.writeFileSync(file, broken);
    await assert.rejects(guest(file), (e: unknown) => e instanceof BlockError && /footer/i.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a vmfsSparse descriptor over a COWD extent reads its grains, as qemu-img does', async () => {
  const dir = scratch();
  try {
    // COWD: 2048 sectors, 8-sector grains, one grain directory entry at sector 4, its 4096-entry table at sector 5.
    const f = Buffer.alloc(64 * 512);
    f.write('COWD', 0, 'latin1');
    f.writeUInt32LE(1, 4);
    f.writeUInt32LE(3, 8);
    f.writeUInt32LE(2048, 12);
    f.writeUInt32LE(8, 16);
    f.writeUInt32LE(4, 20);
    f.writeUInt32LE(1, 24);
    f.writeUInt32LE(5, 4 * 512); // GD[0] -> GT at sector 5
    f.writeUInt32LE(40, 5 * 512 + 4 * 3); // grain 3 (guest 12 KiB) at sector 40
    f.fill(0x5c, 40 * 512, 48 * 512);
    fs.writeFileSync(path.join(dir, 'disk-delta.vmdk'), f);
    const desc = path.join(dir, 'disk.vmdk');
    fs.writeFileSync(desc, '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfsSparse"\n\n# Extent description\nRW 2048 VMFSSPARSE "disk-delta.vmdk"\n');
    const got = await guest(desc);
    const want = Buffer.alloc(1 << 20);
    want.fill(0x5c, 12 * 1024, 16 * 1024);
    assert.ok(got.equals(want), 'COWD grain 3 holds the data');
    if (hasQemu) assert.ok(want.equals(await qemuGuest(desc, dir)), 'qemu-img reads the crafted COWD extent the same');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('descriptor parsing: QEMU\'s invalid extent lines, CIDs, probe', () => {
  assert.throws(() => parseExtentLines('RW 100 FLAT "x.vmdk"\n'), /Invalid extent line/);
  assert.throws(() => parseExtentLines('RW 100 SPARSE "x.vmdk" 7\n'), /Invalid extent line/);
  // lines that are not RW extents are skipped, as QEMU skips them
  assert.deepEqual(parseExtentLines('RDONLY 100 FLAT "x" 0\nRW 0 FLAT "y" 0\nRW 8 ZERO "z"\n'), []);
  assert.throws(() => parseExtentLines('RW 1 FLAT "f" 0\n'.repeat(5000)), (e: unknown) => e instanceof BlockError && /extents/.test(e.message));
  const d = parseDescriptor('version=1\nCID=abc\nparentCID=ffffffff\ncreateType="monolithicFlat"\nparentFileNameHint="b.vmdk"\n');
  assert.equal(d.cid, 0xabc);
  assert.equal(d.parentFileNameHint, 'b.vmdk');
  assert.throws(() => parseDescriptor('version=1\ncreateType="monolithicFlat"\n'), /CID/);
  assert.equal(probeVmdk(Buffer.from('# Disk DescriptorFile\n  \nversion=1\n')), 100);
  assert.equal(probeVmdk(Buffer.from('# x\nversion=4\n')), 0);
  assert.equal(probeVmdk(Buffer.from('hello')), 0);
});

test('mutated sparse and stream-optimized images open, read, map and check or fail with a typed BlockError', async () => {
  const dir = scratch();
  let seed = 0x5eed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  try {
    for (const name of ['vmdk-sparse-written.vmdk', 'vmdk-stream-optimized.vmdk', 'vmdk-zeroed-grain.vmdk']) {
      const orig = fs.readFileSync(path.join(images, name));
      for (let i = 0; i < 40; i++) {
        const b = Buffer.from(orig);
        // header fields, the descriptor, the grain directories and tables, the first grain
        for (let k = 0; k < 1 + rand(4); k++) {
          const regions = [[0, 84], [0x200, 0x400], [21 * 512, 32 * 512], [64 * 1024, 64 * 1024 + 64]];
          const [lo, hi] = regions[rand(regions.length)];
          b[lo + rand(hi - lo)] = rand(256);
        }
        const file = path.join(dir, `m${i}.vmdk`);
        fs.writeFileSync(file, b);
        for (const op of [() => guestHead(file), () => mapImage(file), () => checkImage(file)]) {
          try {
            await op();
          } catch (e) {
            assert.ok(e instanceof BlockError, `${name} mutation ${i}: ${(e as Error).stack}`);
          }
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
