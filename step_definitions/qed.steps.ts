/**
 * Steps of the qed and qcow features that the generic steps do not cover:
 * hostile images (one field damaged in an image qemu-img made) and the
 * refusal that names one of the accepted words.
 */
import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { Given, Then } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { assertRefusalNaming, names } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { makeQedQcowBase, qedQcowDefect, type QedQcowDefect } from './support/hostile-qed-qcow.js';

const applied = new WeakMap<QbcWorld, QedQcowDefect>();

Given(/^a (qed|qcow) image whose (.+)$/, async function (this: QbcWorld, format: 'qed' | 'qcow', description: string) {
  const defect = qedQcowDefect(format, description);
  for (const tool of ['qemu-img', 'qemu-io']) {
    if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the valid image that is then damaged`);
  }
  const skip = this.needs(format, 'info');
  if (skip) return skip;
  const img = this.declare('image', format);
  await makeQedQcowBase(format, img.filename);
  await defect.apply(img.filename);
  applied.set(this, defect);
  this.sha256Before = await sha256File(img.filename);
  return undefined;
});

Then('opening fails with an error naming the damaged field', function (this: QbcWorld) {
  const defect = applied.get(this);
  assert.ok(defect, 'no qed/qcow defect was applied to the image');
  assertRefusalNaming('opening', this.lastError, []);
  const msg = (this.lastError as Error).message;
  assert.ok(defect.words.some((w) => names(msg, w)),
    `opening failed, but the message names none of ${defect.words.map((w) => `"${w}"`).join(', ')}:\n${msg}`);
});

// The oracle makes the same image from the same request: creation is
// deterministic for qed and qcow in QEMU 7.2, so the files must be equal.
Then('the oracle creates a byte-identical {size} {format} image with {string}', async function (this: QbcWorld, size: number, format: string, options: string) {
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle configured');
  const skip = this.needs(format, 'create', oracle);
  if (skip) return skip;
  const mine = this.image();
  const theirs = this.path(`oracle-made.${format}`);
  await oracle.create({ format, filename: theirs, size, ...(options ? { options } : {}) });
  assert.equal(await sha256File(mine.filename), await sha256File(theirs), `${this.iut.name} and ${oracle.name} created different ${format} files`);
  return undefined;
});

// --- qed damage that is not a hostile header: a leak, a crashed writer ---

Given('the qed image has an unused cluster at its end', async function (this: QbcWorld) {
  const path = this.image().filename;
  const fh = await open(path, 'r+');
  try {
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const clusterSize = head.readUInt32LE(4);
    const { size } = await fh.stat();
    // One whole cluster of bytes past the last used one: referenced by no table.
    await fh.write(Buffer.alloc(clusterSize, 0x66), 0, clusterSize, Math.ceil(size / clusterSize) * clusterSize);
  } finally {
    await fh.close();
  }
});

Given('the qed image is marked as needing a check', async function (this: QbcWorld) {
  // features bit 1 (QED_F_NEED_CHECK): what a writer leaves when it stops before a clean close.
  const fh = await open(this.image().filename, 'r+');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, 16);
    b.writeBigUInt64LE(b.readBigUInt64LE(0) | 2n);
    await fh.write(b, 0, 8, 16);
  } finally {
    await fh.close();
  }
});

// qed never reclaims space: after a repair the clusters the dropped entries
// used are leaks, and qemu-img check exits 3 for them.
Then('the repair fixed {int} corruption(s) and left {int} leaked cluster(s)', function (this: QbcWorld, fixed: number, leaks: number) {
  const r = this.lastCheck;
  assert.ok(r, 'no repair was run');
  const n = (k: string) => (r as unknown as Record<string, number | undefined>)[k] ?? 0;
  assert.equal(n('corruptions-fixed'), fixed, `corruptions fixed: ${JSON.stringify(r)}`);
  assert.equal(n('corruptions'), 0, `corruptions left: ${JSON.stringify(r)}`);
  assert.equal(n('leaks'), leaks, `leaks left: ${JSON.stringify(r)}`);
  assert.equal(r.exitCode, leaks ? 3 : 0, `check exit status ${r.exitCode}`);
});

Then('the qed need-check flag is {word}', async function (this: QbcWorld, state: string) {
  assert.ok(state === 'set' || state === 'clear', `"set" or "clear", not "${state}"`);
  const fh = await open(this.image().filename, 'r');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, 16);
    assert.equal((b.readBigUInt64LE(0) & 2n) !== 0n, state === 'set', `the need-check flag (features bit 1) is not ${state}`);
  } finally {
    await fh.close();
  }
});

// --- qcow: compressed clusters, which only qemu-img convert -c writes ---

Given('a qcow image with compressed clusters made by qemu-img', async function (this: QbcWorld) {
  if (!(await toolAvailable('qemu-img'))) return this.notApplicable('qemu-img is needed to write compressed qcow clusters');
  const skip = this.needs('qcow', 'read');
  if (skip) return skip;
  const src = this.path('compress-source.raw');
  // 512 KiB of 0x44 then 512 KiB of zeroes: compressed data clusters, then nothing.
  await writeFile(src, Buffer.concat([Buffer.alloc(512 * 1024, 0x44), Buffer.alloc(512 * 1024)]));
  const img = this.declare('image', 'qcow');
  // qemu-img 7.2 exits 1 here although the image is complete (its final empty
  // compressed write, which qcow refuses): judge the result by comparing instead.
  await execa('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow', src, img.filename], { timeout: 60_000, stdin: 'ignore', reject: false });
  const same = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow', src, img.filename], { timeout: 60_000, stdin: 'ignore', reject: false });
  assert.equal(same.exitCode, 0, `qemu-img convert -c did not make a complete qcow image: ${same.stdout}${same.stderr}`);
  return undefined;
});
