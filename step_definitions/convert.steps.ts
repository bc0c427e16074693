/** qemu-img convert and compare, in the suite's words. */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { Then, When } from '@cucumber/cucumber';
import type { ConvertRequest } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

interface ConvertSpec {
  format: string;
  options?: string;
  compress?: boolean;
  backing?: string;
  noCreate?: boolean;
  /** the image converted; default: the current one */
  from?: string;
  into?: string;
}

async function convert(world: QbcWorld, spec: ConvertSpec, mayFail = false): Promise<'skipped' | void> {
  const source = world.image(spec.from);
  const skip = world.needs(source.format, 'read') ?? world.needs(spec.format, 'convert');
  if (skip) return skip;
  const sourceName = spec.from ?? world.current;
  const target = spec.noCreate ? world.image(spec.into) : world.declare(spec.into ?? 'converted', spec.format);
  world.lastTarget = target;
  if (!spec.noCreate) world.keyed(target, spec.options);
  const req: ConvertRequest = { source, target };
  if (spec.options) req.options = spec.options;
  if (spec.compress) req.compress = true;
  if (spec.noCreate) req.noCreate = true;
  if (spec.backing) {
    const b = world.image(spec.backing);
    req.backingFile = basename(b.filename);
    req.backingFormat = b.format;
  }
  // Conversion makes the target "the image"; the source stays reachable by name.
  world.current = spec.noCreate ? (spec.into ?? world.current) : (spec.into ?? 'converted');
  if (mayFail) {
    world.lastError = await attempt(() => world.iut.convert(req));
    world.current = sourceName;
  } else {
    await world.iut.convert(req);
  }
}

When('the image is converted to {format}', function (this: QbcWorld, format: string) {
  return convert(this, { format });
});

When('the image is converted to {format} with {string}', function (this: QbcWorld, format: string, options: string) {
  return convert(this, { format, options });
});

When('the image is converted to {format} compressed', function (this: QbcWorld, format: string) {
  return convert(this, { format, compress: true });
});

When('the image is converted to {format} compressed with {string}', function (this: QbcWorld, format: string, options: string) {
  return convert(this, { format, compress: true, options });
});

When('image {string} is converted to {format} as {string}', function (this: QbcWorld, from: string, format: string, into: string) {
  return convert(this, { format, from, into });
});

When('image {string} is converted to {format} as {string} with {string}', function (this: QbcWorld, from: string, format: string, into: string, options: string) {
  return convert(this, { format, from, into, options });
});

When('image {string} is converted to {format} as {string} backed by {string}', function (this: QbcWorld, from: string, format: string, into: string, backing: string) {
  return convert(this, { format, from, into, backing });
});

When('image {string} is converted into the existing image {string}', function (this: QbcWorld, from: string, into: string) {
  return convert(this, { format: this.image(into).format, from, into, noCreate: true });
});

When('a conversion of the image to {format} with {string} is attempted', function (this: QbcWorld, format: string, options: string) {
  return convert(this, { format, options }, true);
});

When('a compressed conversion of the image to {format} is attempted', function (this: QbcWorld, format: string) {
  return convert(this, { format, compress: true }, true);
});

Then('the conversion fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the conversion', this.lastError, [word]);
});

Then('the conversion succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the conversion failed: ${(this.lastError as Error).message}`);
});

When('images {string} and {string} are compared', async function (this: QbcWorld, a: string, b: string) {
  const ia = this.image(a);
  const ib = this.image(b);
  const skip = this.needs(ia.format, 'compare') ?? this.needs(ib.format, 'compare');
  if (skip) return skip;
  this.lastCompare = await this.iut.compare(ia, ib);
  return undefined;
});

Then('they are reported identical', function (this: QbcWorld) {
  assert.ok(this.lastCompare, 'nothing was compared');
  assert.equal(this.lastCompare.identical, true, `reported different: ${this.lastCompare.message}`);
});

Then('they are reported different', function (this: QbcWorld) {
  assert.ok(this.lastCompare, 'nothing was compared');
  assert.equal(this.lastCompare.identical, false, `reported identical: ${this.lastCompare.message}`);
});

When('a compressed conversion of the image to {format} with {string} is attempted', function (this: QbcWorld, format: string, options: string) {
  return convert(this, { format, compress: true, options }, true);
});
