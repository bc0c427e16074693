/**
 * vpc and vhdx pieces that scenarios do not pin directly: CRC-32C against its
 * published check value, the CHS rounding against sizes qemu-img 7.2 printed,
 * the corpus masks' checksum recomputation, and mutation fuzzing of both readers
 * (open, read, write, check, map either work or fail with a typed BlockError).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c, crc32cWithHole } from '../reference/formats/vhdx/crc32c.js';
import { vpcChecksum, vpcGeometry } from '../reference/formats/vpc.js';
import { batGeometry } from '../reference/formats/vhdx/bat.js';
import { openImage } from '../reference/graph/open.js';
import { checkImage } from '../reference/tools/check.js';
import { mapImage } from '../reference/tools/map.js';
import { createImage } from '../reference/tools/create.js';
import { ioOnImage } from '../reference/tools/io.js';
import { prng, typedOrNothing } from './support/fuzz.js';

/** an attempt on a mutated image that takes longer is a hang */
const HANG_MS = 5000;
import { maskedSha256 } from '../runner/corpus/files.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const images = path.join(root, 'corpus', 'images');

test('CRC-32C: the check value of "123456789" is 0xe3069283, and a hole counts as zeroes', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  const b = Buffer.from('abcdXXXXefgh');
  assert.equal(crc32cWithHole(b, 4), crc32c(Buffer.from('abcd\0\0\0\0efgh')));
});

test('vpc CHS rounding gives the sizes qemu-img 7.2 reports', () => {
  // requested size -> virtual size, as `qemu-img create -f vpc` + `qemu-img info` printed them
  const seen: Array<[number, number]> = [[0, 0], [513, 34816], [1 << 20, 1079296], [1000000, 1009664], [10 << 20, 10514432], [5 << 20, 5257216],
    [3 * 2 ** 30, 3221471232], [127 * 2 ** 30, 136365219840], [2040 * 2 ** 30, 2190433320960]];
  for (const [size, virtual] of seen) {
    const rounded = vpcGeometry(Math.ceil(size / 512) * 512, false).totalSectors * 512;
    assert.equal(rounded, virtual, `size ${size}`);
    // rounding is idempotent: the rounded size is its own geometry
    assert.equal(vpcGeometry(rounded, false).totalSectors * 512, rounded, `size ${rounded} again`);
  }
  assert.deepEqual(vpcGeometry(1000448, true), { cyls: 65535, heads: 16, secs: 255, totalSectors: 1954 });
});

test('vhdx BAT entry counts use 32-bit arithmetic as QEMU does (an empty disk gets a 64 MiB BAT region)', () => {
  assert.equal(batGeometry(4 << 20, 8 << 20).entries, 1);
  assert.equal(batGeometry(0, 8 << 20).entries, 8388607);
  // 1 MiB blocks: a sector bitmap entry after every 4096 payload entries
  assert.equal(batGeometry(4097 * 2 ** 20, 1 << 20).entries, 4097 + 1);
});

test('corpus masks: a checksum over masked fields is recomputed only when it held', async () => {
  const golden = path.join(images, 'vpc-fixed-force-size.vpc');
  if (!fs.existsSync(golden)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vpc-mask-'));
  try {
    const masks = [
      { offset: -512 + 0x18, length: 4 },
      { offset: -512 + 0x44, length: 16 },
      { offset: -512 + 0x40, length: 4, checksum: { algorithm: 'vpc' as const, offset: -512, length: 512 } },
    ];
    const want = await maskedSha256(golden, masks);
    const buf = fs.readFileSync(golden);
    const footer = buf.length - 512;
    // another timestamp with a right checksum: the same outside the random fields
    buf.writeUInt32BE(buf.readUInt32BE(footer + 0x18) + 12345, footer + 0x18);
    buf.writeUInt32BE(vpcChecksum(buf.subarray(footer), 0x40), footer + 0x40);
    const other = path.join(dir, 'other.vpc');
    fs.writeFileSync(other, buf);
    assert.equal(await maskedSha256(other, masks), want);
    // the same with a wrong checksum: a difference, although the field is masked
    buf.writeUInt32BE((buf.readUInt32BE(footer + 0x40) ^ 1) >>> 0, footer + 0x40);
    fs.writeFileSync(other, buf);
    assert.notEqual(await maskedSha256(other, masks), want);
    // a difference outside the masks (the geometry) shows, checksum recomputed or not
    buf.writeUInt32BE(vpcChecksum(buf.subarray(footer), 0x40), footer + 0x40);
    buf[footer + 0x3b] ^= 1;
    buf.writeUInt32BE(vpcChecksum(buf.subarray(footer), 0x40), footer + 0x40);
    fs.writeFileSync(other, buf);
    assert.notEqual(await maskedSha256(other, masks), want);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Mutations aimed at metadata: [start, end) ranges of the file where bytes are changed. */
async function fuzz(format: 'vpc' | 'vhdx', options: string, size: number, writes: Array<[number, number]>, zones: (len: number) => Array<[number, number]>, iterations: number, seed: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `qbc-${format}-fuzz-`));
  try {
    const base = path.join(dir, `base.${format}`);
    await createImage({ format, filename: base, size, options });
    await ioOnImage({ filename: base, format }, writes.map(([offset, length]) => ({ op: 'write' as const, offset, length, pattern: 0x11 })));
    const pristine = fs.readFileSync(base);
    const rnd = prng(seed);
    const target = path.join(dir, `m.${format}`);
    for (let i = 0; i < iterations; i++) {
      const buf = Buffer.from(pristine);
      const z = zones(buf.length);
      for (let k = 0, n = 1 + rnd(4); k < n; k++) {
        const [s, e] = z[rnd(z.length)];
        const at = s + rnd(e - s);
        buf[at] = rnd(3) === 0 ? buf[at] ^ (1 << rnd(8)) : rnd(256);
      }
      fs.writeFileSync(target, buf);
      const what = `${format} iteration ${i} (seed ${seed})`;
      await typedOrNothing(`${what}: open+read`, async () => {
        const node = await openImage(target, { format, readOnly: true });
        try {
          await node.read(0, Math.min(node.size(), 1 << 20));
        } finally {
          await node.close();
        }
      }, HANG_MS);
      await typedOrNothing(`${what}: map`, () => mapImage(target, { format }), HANG_MS);
      await typedOrNothing(`${what}: check`, () => checkImage(target, { format }), HANG_MS);
      await typedOrNothing(`${what}: write`, () => ioOnImage({ filename: target, format }, [{ op: 'write', offset: 0, length: 4096, pattern: 0x22 }]), HANG_MS);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('vpc: mutated footers, dynamic headers and BATs give typed errors or work', async () => {
  await fuzz('vpc', 'subformat=dynamic', 8 << 20, [[1 << 20, 4096]], (len) => [[0, 2048], [len - 512, len]], 150, 0x5eed1);
});

test('vhdx: mutated headers, region tables, metadata, BAT and log give typed errors or work', async () => {
  const MiB = 1 << 20;
  await fuzz('vhdx', 'block_size=1M', 8 << 20, [[MiB, 4096]], () => [[0, 0x50], [0x10000, 0x10050], [0x20000, 0x20050], [0x30000, 0x30050], [MiB, MiB + 0x2100], [2 * MiB, 2 * MiB + 64], [3 * MiB, 3 * MiB + 0x100], [3 * MiB + 0x10000, 3 * MiB + 0x10030]], 120, 0x5eed2);
});

test('vpc and vhdx: the schemas list exactly the options qemu-img create -o help lists, with its help text', async (t) => {
  const { execa } = await import('execa');
  const { createOptionsHelp } = await import('../reference/options/create-options.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbc-vpc-help-'));
  try {
    for (const format of ['vpc', 'vhdx']) {
      const r = await execa('qemu-img', ['create', '-f', format, '-o', 'help', path.join(dir, `x.${format}`)], { reject: false });
      if (r.failed && r.exitCode === undefined) { t.skip('qemu-img is not on PATH'); return; }
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(createOptionsHelp(format), r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n`, `${format} -o help`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
