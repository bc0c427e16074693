/**
 * Steps of the vdi and parallels features the generic steps do not cover:
 * hostile images (one field of an image qemu-img made damaged here), a repair
 * the format does not have, and the parallels in-use flag.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { Given, Then, When } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { assertRefusalNaming, attempt, names } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { makeVdiParallelsBase, vdiParallelsDefect, type VdiParallels, type VdiParallelsDefect } from './support/hostile-vdi-parallels.js';

const applied = new WeakMap<QbcWorld, VdiParallelsDefect>();

Given(/^a (vdi|parallels) image whose (.+)$/, async function (this: QbcWorld, format: VdiParallels, description: string) {
  const defect = vdiParallelsDefect(format, description);
  for (const tool of ['qemu-img', 'qemu-io']) {
    if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the valid image that is then damaged`);
  }
  const skip = this.needs(format, 'info');
  if (skip) return skip;
  const img = this.declare('image', format);
  await makeVdiParallelsBase(format, img.filename);
  await defect.apply(img.filename);
  applied.set(this, defect);
  this.sha256Before = await sha256File(img.filename);
  return undefined;
});

Then('the refusal names the damaged field', function (this: QbcWorld) {
  const defect = applied.get(this);
  assert.ok(defect, 'no vdi/parallels defect was applied to the image');
  assertRefusalNaming('opening', this.lastError, []);
  const msg = (this.lastError as Error).message;
  assert.ok(defect.words.some((w) => names(msg, w)),
    `opening failed, but the message names none of ${defect.words.map((w) => `"${w}"`).join(', ')}:\n${msg}`);
});

// --- a repair the format does not have (qemu-img check -r on vdi) ---

When('a repair {string} of the image is attempted', async function (this: QbcWorld, mode: string) {
  if (mode !== 'leaks' && mode !== 'all') throw new Error(`repair mode must be "leaks" or "all", not "${mode}"`);
  const img = this.image();
  // Only the check is needed: the scenario is about how a missing repair is reported.
  const skip = this.needs(img.format, 'check');
  if (skip) return skip;
  this.lastCheck = null;
  this.lastError = await attempt(async () => { this.lastCheck = await this.iut.check(img, { repair: mode }); });
  return undefined;
});

Then('the repair is refused as not supported', function (this: QbcWorld) {
  // qemu-img: "This image format does not support checks", exit 63; an adapter may instead refuse with a typed error.
  if (this.lastError !== null) {
    assertRefusalNaming('the repair', this.lastError, []);
    const msg = (this.lastError as Error).message;
    assert.ok(names(msg, 'not supported') || names(msg, 'does not support'), `the repair failed for another reason:\n${msg}`);
    return;
  }
  assert.ok(this.lastCheck, 'no repair was attempted');
  assert.equal(this.lastCheck.exitCode, 63, `the repair ran: ${JSON.stringify(this.lastCheck)}`);
});

// --- parallels in-use flag (header offset 0x2c) ---

const INUSE = 0x746f6e59;

async function inuse(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0x2c);
    return b.readUInt32LE(0);
  } finally {
    await fh.close();
  }
}

Given('the parallels image is marked in use', async function (this: QbcWorld) {
  const fh = await open(this.image().filename, 'r+');
  try {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(INUSE);
    await fh.write(b, 0, 4, 0x2c);
  } finally {
    await fh.close();
  }
  this.sha256Before = await sha256File(this.image().filename);
});

Then('the parallels in-use flag is {word}', async function (this: QbcWorld, state: string) {
  assert.ok(state === 'set' || state === 'clear', `"set" or "clear", not "${state}"`);
  const v = await inuse(this.image().filename);
  assert.equal(v === INUSE, state === 'set', `the in-use flag (0x2c) is 0x${v.toString(16)}, not ${state}`);
});

// --- space no BAT entry uses, at the end of a parallels file ---

Given('the parallels image has {size} of unused space at its end', async function (this: QbcWorld, length: number) {
  const fh = await open(this.image().filename, 'r+');
  try {
    const { size } = await fh.stat();
    await fh.write(Buffer.alloc(length, 0x66), 0, length, size);
  } finally {
    await fh.close();
  }
});

// --- an image the implementation under test did not make (for a format it may only read) ---

Given(/^a (vdi|parallels) image that qemu-img made and wrote$/, async function (this: QbcWorld, format: VdiParallels) {
  for (const tool of ['qemu-img', 'qemu-io']) {
    if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the image`);
  }
  const skip = this.needs(format, 'read');
  if (skip) return skip;
  const img = this.declare('image', format);
  await makeVdiParallelsBase(format, img.filename);
  return undefined;
});
