/**
 * --image-opts beyond info: qemu-img convert names its source (--image-opts) or
 * its existing target (--target-image-opts, with -n) by dotted option lists, and
 * compare names both images that way. The option lists are built from the
 * scenario's images: driver=FORMAT,file.driver=file,file.filename=PATH.
 */
import { Then, When } from '@cucumber/cucumber';
import type { ImageRef } from '../adapters/adapter.js';
import type { NamedImage, QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

function asOptions(img: NamedImage): ImageRef {
  return { filename: `driver=${img.format},file.driver=file,file.filename=${img.filename.replaceAll(',', ',,')}`, imageOpts: true };
}

When('image {string} named by options is converted to {format} as {string}', async function (this: QbcWorld, from: string, format: string, into: string) {
  const src = this.image(from);
  const skip = this.needs(src.format, 'read') ?? this.needs(format, 'convert');
  if (skip) return skip;
  const target = this.declare(into, format);
  await this.iut.convert({ source: asOptions(src), target });
  return undefined;
});

When('image {string} is converted into the existing image {string} named by options', async function (this: QbcWorld, from: string, into: string) {
  const src = this.image(from);
  const dst = this.image(into);
  const skip = this.needs(src.format, 'read') ?? this.needs(dst.format, 'convert');
  if (skip) return skip;
  await this.iut.convert({ source: src, target: { ...asOptions(dst), format: dst.format }, noCreate: true });
  return undefined;
});

When('a conversion of image {string} into a new image named by options is attempted', async function (this: QbcWorld, from: string) {
  const src = this.image(from);
  const skip = this.needs(src.format, 'read') ?? this.needs('raw', 'convert');
  if (skip) return skip;
  const target = this.declare('by-options', 'raw');
  this.lastError = await attempt(() => this.iut.convert({ source: src, target: { ...asOptions(target), format: 'raw' } }));
  return undefined;
});

Then('the conversion is refused naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the conversion', this.lastError, [word]);
});

When('images {string} and {string} named by options are compared', async function (this: QbcWorld, a: string, b: string) {
  const ia = this.image(a);
  const ib = this.image(b);
  const skip = this.needs(ia.format, 'compare') ?? this.needs(ib.format, 'compare');
  if (skip) return skip;
  this.lastCompare = await this.iut.compare(asOptions(ia), asOptions(ib));
  return undefined;
});
