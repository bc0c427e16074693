/**
 * Steps of the vpc and vhdx features the generic steps do not cover: images
 * compared outside their random fields, hostile images, a vhdx log left
 * waiting for replay, and header fields a scenario is about.
 */
import assert from 'node:assert/strict';
import { open, readFile } from 'node:fs/promises';
import { Given, Then, When, type DataTable } from '@cucumber/cucumber';
import type { IoCommand } from '../adapters/adapter.js';
import { sha256File } from '../adapters/qemu.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt, names } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { parseSize } from './support/units.js';
import { applyDefect, checksumProblems, differencesOutside, leaveBatUpdateInLog, makeBase, randomFields, vpcVhdxDefect, type Defect } from './support/vpc-vhdx-images.js';

interface History { size: number; format: string; options: string; writes: IoCommand[][] }
const history = new WeakMap<QbcWorld, History>();
const applied = new WeakMap<QbcWorld, Defect>();

Given('a {size} {format} image created with {string} and written in separate opens:', async function (this: QbcWorld, size: number, format: string, options: string, table: DataTable) {
  const skip = this.needs(format, 'create') ?? this.needs(format, 'write');
  if (skip) return skip;
  const img = this.declare('image', format);
  await this.iut.create({ format, filename: img.filename, size, ...(options ? { options } : {}) });
  const writes: IoCommand[][] = [];
  for (const row of table.hashes()) {
    const offset = parseSize(row.offset);
    const length = parseSize(row.length);
    const cmd: IoCommand = row.pattern === 'zeroes' ? { op: 'zero', offset, length } : { op: 'write', offset, length, pattern: Number(row.pattern) };
    await this.iut.io(img, [cmd]);
    writes.push([cmd]);
  }
  history.set(this, { size, format, options, writes });
  return undefined;
});

/** The oracle repeats the scenario's creation (and writes); the files must agree outside the random fields. */
async function sameOutsideRandomFields(world: QbcWorld): Promise<'skipped' | undefined> {
  const oracle = world.oracle;
  if (!oracle) return world.notApplicable('no oracle configured');
  const mine = world.image();
  const h = history.get(world) ?? { size: 0, format: mine.format, options: '', writes: [] };
  const skip = world.needs(mine.format, h.writes.length ? 'write' : 'create', oracle);
  if (skip) return skip;
  if (!history.has(world)) throw new Error('the scenario did not record how its image was made');
  const theirs = world.path(`oracle-made.${h.format}`);
  await oracle.create({ format: h.format, filename: theirs, size: h.size, ...(h.options ? { options: h.options } : {}) });
  for (const w of h.writes) await oracle.io({ filename: theirs, format: h.format }, w);
  const masks = [...await randomFields(mine.filename, h.format), ...await randomFields(theirs, h.format)];
  const diff = await differencesOutside(mine.filename, theirs, masks);
  assert.deepEqual(diff, [], `${world.iut.name} and ${oracle.name} made different ${h.format} files outside the random fields`);
  // The checksums over the random fields must hold in both files (masking hides their values, not their validity).
  for (const [who, f] of [[world.iut.name, mine.filename], [oracle.name, theirs]]) {
    assert.deepEqual(await checksumProblems(f, h.format), [], `checksums that do not hold in the file ${who} made`);
  }
  return undefined;
}

Then('the oracle makes the same file outside the random fields', function (this: QbcWorld) {
  return sameOutsideRandomFields(this);
});

When('a {size} {format} image is made with {string} for comparison', async function (this: QbcWorld, size: number, format: string, options: string) {
  const skip = this.needs(format, 'create');
  if (skip) return skip;
  const img = this.declare('image', format);
  await this.iut.create({ format, filename: img.filename, size, ...(options ? { options } : {}) });
  history.set(this, { size, format, options, writes: [] });
  return undefined;
});

// --- header fields ---

/** A vpc footer or vhdx header field a scenario is about, read from the file itself. */
async function field(path: string, name: string): Promise<string | number> {
  const fh = await open(path, 'r');
  try {
    const at = async (offset: number, length: number) => {
      const b = Buffer.alloc(length);
      await fh.read(b, 0, length, offset);
      return b;
    };
    const { size } = await fh.stat();
    const footer = name.startsWith('vpc') ? await at(size - 512, 512) : Buffer.alloc(0);
    switch (name) {
      case 'vpc creator': return footer.toString('latin1', 0x1c, 0x20);
      case 'vpc geometry': return `${footer.readUInt16BE(0x38)}/${footer[0x3a]}/${footer[0x3b]}`;
      case 'vpc disk type': return footer.readUInt32BE(0x3c);
      case 'vpc current size': return Number(footer.readBigUInt64BE(0x30));
      case 'vhdx log length': return (await at(0x20044, 4)).readUInt32LE(0);
      case 'vhdx block size': return (await at(Number((await at(0x30040, 8)).readBigUInt64LE(0)) + 0x10000, 4)).readUInt32LE(0);
      case 'vhdx first block state': return Number((await at(Number((await at(0x30020, 8)).readBigUInt64LE(0)), 8)).readBigUInt64LE(0) & 7n);
      default: throw new Error(`unknown field ${name}`);
    }
  } finally {
    await fh.close();
  }
}

Then('the file\'s {string} is {string}', async function (this: QbcWorld, name: string, want: string) {
  const got = await field(this.image().filename, name);
  assert.equal(String(got), want, `${name} of ${this.image().filename}`);
});

Then('the file is {size} long', async function (this: QbcWorld, size: number) {
  const b = await readFile(this.image().filename);
  assert.equal(b.length, size, 'file length');
});

// --- hostile images ---

Given(/^a (vpc|vhdx) image whose (.+)$/, async function (this: QbcWorld, format: 'vpc' | 'vhdx', description: string) {
  const defect = vpcVhdxDefect(format, description);
  for (const tool of ['qemu-img', 'qemu-io']) {
    if (!(await toolAvailable(tool))) return this.notApplicable(`${tool} is needed to make the valid image that is then damaged`);
  }
  const skip = this.needs(format, 'info');
  if (skip) return skip;
  const img = this.declare('image', format);
  await makeBase(format, defect.base, img.filename);
  await applyDefect(defect, img.filename);
  applied.set(this, defect);
  this.sha256Before = await sha256File(img.filename);
  return undefined;
});

function refusedNamingDefect(world: QbcWorld, what: string): void {
  const defect = applied.get(world);
  assert.ok(defect, 'no vpc/vhdx defect was applied to the image');
  assertRefusalNaming(what, world.lastError, []);
  const msg = (world.lastError as Error).message;
  assert.ok(defect.words.some((w) => names(msg, w)), `${what} failed, but the message names none of ${defect.words.map((w) => `"${w}"`).join(', ')}:\n${msg}`);
}

Then('the open is refused naming the damaged field', function (this: QbcWorld) {
  refusedNamingDefect(this, 'opening');
});

When('the image is opened for writing', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'write');
  if (skip) return skip;
  // A write of the bytes already there (zeroes at 0 in the base images, and in the log
  // feature's): the image is opened read-write, which replays a vhdx log, and the guest sees no change.
  this.lastError = await attempt(() => this.iut.io(img, [{ op: 'write', offset: 0, length: 512, pattern: 0 }]));
  return undefined;
});

Then('the open for writing is refused naming the damaged field', function (this: QbcWorld) {
  refusedNamingDefect(this, 'opening for writing');
});

// --- a vhdx log waiting for replay ---

Given('its writer died after logging the BAT update for {size} of pattern {pattern} at offset {size}', async function (this: QbcWorld, length: number, pattern: number, offset: number) {
  // The interrupted writer is the reference (qemu-io cannot be stopped between its log write and replay).
  await leaveBatUpdateInLog(this.image().filename, offset, Buffer.alloc(length, pattern));
  this.sha256Before = await sha256File(this.image().filename);
});

When('the image is opened read-only', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  // info opens read-only; a reader without info (a library) opens for a read instead
  const hasInfo = this.iut.capabilities.formats[img.format]?.includes('info') ?? false;
  this.lastError = await attempt(() => (hasInfo ? this.iut.info(img) : this.iut.io(img, [{ op: 'read', offset: 0, length: 512, pattern: -1 }])));
  return undefined;
});

Then('opening is refused naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('opening', this.lastError, [word]);
});

// --- probing ---

const probed = new WeakMap<QbcWorld, string>();

When('the image is probed', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needsProbing(img.format);
  if (skip) return skip;
  // No format given: the implementation decides from the file's bytes.
  const info = await this.iut.info({ filename: img.filename });
  probed.set(this, String(info.format));
  return undefined;
});

Then('it is probed as {word}', function (this: QbcWorld, format: string) {
  assert.equal(probed.get(this), format, 'probed format');
});

// --- the format's name ---

When('a {size} image is created with the format name {string}', async function (this: QbcWorld, size: number, name: string) {
  const format = name.toLowerCase();
  const skip = this.needs(format, 'create');
  if (skip) return skip;
  const img = this.declare('image', format);
  this.lastTarget = img;
  this.lastError = await attempt(() => this.iut.create({ format: name, filename: img.filename, size }));
  return undefined;
});
