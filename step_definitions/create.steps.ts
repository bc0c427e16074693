/** Creating images, and what a refused create must (not) leave behind. */
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { basename } from 'node:path';
import { Given, Then, When } from '@cucumber/cucumber';
import type { CreateRequest } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

interface CreateSpec {
  name: string;
  format: string;
  size?: number;
  options?: string;
  backing?: string;
  /** false: pass no backing format at all */
  backingFormat?: boolean;
}

function request(world: QbcWorld, spec: CreateSpec): CreateRequest {
  const target = world.declare(spec.name, spec.format);
  world.lastTarget = target;
  const req: CreateRequest = { format: spec.format, filename: target.filename };
  world.keyed(target, spec.options);
  if (target.secrets) req.secrets = target.secrets;
  if (spec.size !== undefined) req.size = spec.size;
  if (spec.options !== undefined && spec.options !== '') req.options = spec.options;
  if (spec.backing !== undefined) {
    const base = world.image(spec.backing);
    // relative name: qemu resolves it against the directory of the new image
    req.backingFile = basename(base.filename);
    if (spec.backingFormat !== false) req.backingFormat = base.format;
  }
  return req;
}

/** A precondition: made by the implementation, or by the oracle when the implementation cannot create the format. */
async function mustCreate(world: QbcWorld, spec: CreateSpec): Promise<'skipped' | void> {
  const maker = world.preconditionMaker(spec.format);
  if (maker === 'skipped') return maker;
  const req = request(world, spec);
  await maker.create(req);
}

async function tryCreate(world: QbcWorld, spec: CreateSpec): Promise<'skipped' | void> {
  const skip = world.needs(spec.format, 'create');
  if (skip) return skip;
  const req = request(world, spec);
  world.lastError = await attempt(() => world.iut.create(req));
}

// --- Given: images a scenario starts from (must succeed) ---

Given('a {size} {format} image', function (this: QbcWorld, size: number, format: string) {
  return mustCreate(this, { name: 'image', format, size });
});

Given('a {size} {format} image created with {string}', function (this: QbcWorld, size: number, format: string, options: string) {
  return mustCreate(this, { name: 'image', format, size, options });
});

Given('a {size} {format} image {string}', function (this: QbcWorld, size: number, format: string, name: string) {
  return mustCreate(this, { name, format, size });
});

Given('a {size} {format} image {string} created with {string}', function (this: QbcWorld, size: number, format: string, name: string, options: string) {
  return mustCreate(this, { name, format, size, options });
});

Given('a {format} image {string} backed by {string}', function (this: QbcWorld, format: string, name: string, backing: string) {
  return mustCreate(this, { name, format, backing });
});

Given('a {format} image {string} backed by {string} created with {string}', function (this: QbcWorld, format: string, name: string, backing: string, options: string) {
  return mustCreate(this, { name, format, backing, options });
});

// --- When: creates the scenario is about (may fail; the outcome is recorded) ---

When('a {size} {format} image is created', function (this: QbcWorld, size: number, format: string) {
  return tryCreate(this, { name: 'image', format, size });
});

When('a {size} {format} image is created with {string}', function (this: QbcWorld, size: number, format: string, options: string) {
  return tryCreate(this, { name: 'image', format, size, options });
});

When('a {format} image is created with {string} and no size', function (this: QbcWorld, format: string, options: string) {
  return tryCreate(this, { name: 'image', format, options });
});

When('a {format} image {string} is created backed by {string}', function (this: QbcWorld, format: string, name: string, backing: string) {
  return tryCreate(this, { name, format, backing });
});

When('a {size} {format} image {string} is created backed by {string}', function (this: QbcWorld, size: number, format: string, name: string, backing: string) {
  return tryCreate(this, { name, format, size, backing });
});

When('a {format} image {string} is created backed by {string} with {string}', function (this: QbcWorld, format: string, name: string, backing: string, options: string) {
  return tryCreate(this, { name, format, backing, options });
});

When('a {format} image {string} is created backed by {string} without a backing format', function (this: QbcWorld, format: string, name: string, backing: string) {
  return tryCreate(this, { name, format, backing, backingFormat: false });
});

When('a {format} image {string} is created backed by the missing file {string}', async function (this: QbcWorld, format: string, name: string, missing: string) {
  const skip = this.needs(format, 'create');
  if (skip) return skip;
  const target = this.declare(name, format);
  this.lastTarget = target;
  this.lastError = await attempt(() =>
    this.iut.create({ format, filename: target.filename, backingFile: missing, backingFormat: format }),
  );
  return undefined;
});

// --- Then ---

Then('creation succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) {
    throw new Error(`creation failed: ${this.lastError instanceof Error ? this.lastError.message : String(this.lastError)}`);
  }
});

Then('creation fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('creation', this.lastError, [word]);
});

Then('creation fails naming {string} or {string}', function (this: QbcWorld, a: string, b: string) {
  // for options qemu's messages describe in words ("backing format" for backing_fmt)
  try {
    assertRefusalNaming('creation', this.lastError, [a]);
  } catch {
    assertRefusalNaming('creation', this.lastError, [b]);
  }
});

Then('creation fails naming {string} and {string}', function (this: QbcWorld, a: string, b: string) {
  assertRefusalNaming('creation', this.lastError, [a, b]);
});

Then('no image file is left behind', async function (this: QbcWorld) {
  assert.ok(this.lastTarget, 'no create was attempted');
  const exists = await access(this.lastTarget.filename).then(() => true, () => false);
  assert.equal(exists, false, `the refused create left ${basename(this.lastTarget.filename)} behind`);
});

// --- encrypted qcow2 (capabilities 'qcow2+luks' and 'qcow2+aes') ---

/** Which encryption capability an option text asks for. */
function encryptionCapability(options: string): string {
  if (/(^|,)encrypt\.format=luks(,|$)/.test(options)) return 'qcow2+luks';
  return 'qcow2+aes';
}

When('a {size} qcow2 image is created encrypted with {string}', async function (this: QbcWorld, size: number, options: string) {
  const skip = this.needs(encryptionCapability(options), 'create');
  if (skip) return skip;
  const req = request(this, { name: 'image', format: 'qcow2', size, options });
  this.lastError = await attempt(() => this.iut.create(req));
  return undefined;
});
