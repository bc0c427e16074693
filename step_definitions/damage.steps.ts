/**
 * Images damaged on purpose: hostile headers (bad input must give a typed error
 * naming the field, never a crash or a hang, and must not be modified), leaked
 * clusters, a writer that crashed with lazy refcounts, the corrupt bit.
 */
import assert from 'node:assert/strict';
import { stat, truncate } from 'node:fs/promises';
import { Given, Then, When } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { missingCapability } from '../adapters/adapter.js';
import { assertRefusalNaming, attempt, isTypedRefusal, names } from './support/errors.js';
import { toolAvailable } from './support/tools.js';
import { FIELD_NAMES, defect, makeBaseImage, markCorrupt } from './support/hostile-qcow2.js';
import { INCOMPAT_DIRTY, dataClusters, readAt, readField, readLayout, setRefcount, writeField } from './support/qcow2-header.js';

const MiB = 2 ** 20;

/** Hostile images start from bytes real qemu-img made, identical for every IUT. */
async function qemuMadeImage(world: QbcWorld): Promise<string | 'skipped'> {
  if (!(await toolAvailable('qemu-img'))) return world.notApplicable('qemu-img is needed to make the valid image that is then damaged');
  const skip = world.needs('qcow2', 'info');
  if (skip) return skip;
  const img = world.declare('image', 'qcow2');
  await makeBaseImage('qemu-img', img.filename, 64 * MiB);
  return img.filename;
}

Given(/^a qcow2 image whose (.+)$/, async function (this: QbcWorld, description: string) {
  const d = defect(description);
  const path = await qemuMadeImage(this);
  if (path === 'skipped') return path;
  await d.apply(path);
  this.defect = d;
  this.sha256Before = await sha256File(path);
  return undefined;
});

Given('a qcow2 image marked corrupt', async function (this: QbcWorld) {
  const path = await qemuMadeImage(this);
  if (path === 'skipped') return path;
  await markCorrupt(path);
  this.sha256Before = await sha256File(path);
  return undefined;
});

/** Generous for a 2-core machine under load: a clean refusal takes well under a second. */
const HOSTILE_OPEN_MS = 15_000;

When('the image is opened', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'read');
  if (skip) return skip;
  // Opening = what every tool does first (info), then a guest read through the tables.
  // "No hang" is part of what the hostile features promise: an image of a few MiB must be
  // answered within HOSTILE_OPEN_MS, not only within the adapter's general timeout.
  const impl = this.iut.bounded?.(HOSTILE_OPEN_MS) ?? this.iut;
  // a reader without info (a third-party library) is judged on the read alone
  const hasInfo = impl.capabilities.formats[img.format]?.includes('info') ?? false;
  this.lastError = await attempt(async () => {
    if (hasInfo) await impl.info(img);
    await impl.io(img, [{ op: 'read', offset: 0, length: 512, pattern: 0 }]);
  });
  return undefined;
});

Then('opening fails with an error naming {string}', function (this: QbcWorld, field: string) {
  const d = this.defect;
  assert.ok(d, 'no defect was applied to the image');
  const accepted = FIELD_NAMES[d.field];
  assert.ok(field === d.field || accepted.includes(field), `the scenario names "${field}" but the defect is in ${d.field}`);
  const err = this.lastError;
  assertRefusalNaming('opening', err, []);
  const msg = (err as Error).message;
  assert.ok(
    accepted.some((w) => names(msg, w)),
    `opening failed, but the message names none of ${accepted.map((w) => `"${w}"`).join(', ')}:\n${msg}`,
  );
});

Then('opening succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`opening failed: ${(this.lastError as Error).message}`);
});

Then('the image file is unchanged', async function (this: QbcWorld) {
  assert.ok(this.sha256Before, 'the file was not hashed before');
  assert.equal(await sha256File(this.image().filename), this.sha256Before, 'the image file was modified');
});

Then('the image header holds no guest data', async function (this: QbcWorld) {
  // The fields that locate metadata must not have been overwritten by guest data.
  const path = this.image().filename;
  assert.equal(await readField(path, 'magic'), 0x514649fbn, 'the qcow2 magic was overwritten');
  const head = await readAt(path, 0, 72);
  assert.ok(!head.includes(Buffer.alloc(16, 0xaa)), 'guest data landed in the header');
});

Then('the write fails or is kept out of the header', async function (this: QbcWorld) {
  // Either refusing or writing elsewhere is acceptable; a crash or header damage is not.
  if (this.lastError !== null) assert.ok(isTypedRefusal(this.lastError), `the write crashed: ${String(this.lastError)}`);
  assert.equal(await readField(this.image().filename, 'magic'), 0x514649fbn, 'the qcow2 magic was overwritten');
});

// --- refcount damage ---

Given('the image has a leaked cluster', async function (this: QbcWorld) {
  // One more cluster at the end of the file with refcount 1 and no reference to it: a leak.
  const path = this.image().filename;
  const { clusterSize } = await readLayout(path);
  const size = (await stat(path)).size;
  const index = Math.ceil(size / clusterSize);
  await truncate(path, (index + 1) * clusterSize);
  await setRefcount(path, index, 1);
});

Given('the image was left by a writer that crashed before updating reference counts', async function (this: QbcWorld) {
  // What lazy_refcounts allows after a host crash: the dirty bit set and the refcounts of
  // the data clusters written never updated.
  const path = this.image().filename;
  const { clusterSize } = await readLayout(path);
  const clusters = await dataClusters(path);
  assert.ok(clusters.length > 0, 'the image has no data clusters to lose refcounts of');
  for (const host of clusters) await setRefcount(path, host / clusterSize, 0);
  const incompat = await readField(path, 'incompatible_features');
  await writeField(path, 'incompatible_features', incompat | INCOMPAT_DIRTY);
});

When('a write of the image opened read-write is attempted', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'write');
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.io(img, [{ op: 'write', offset: 0, length: 65536, pattern: 0x11 }]));
  return undefined;
});

Then('opening for writing is refused naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('opening for writing', this.lastError, [word]);
});
