/** qemu-img resize, in the suite's words. */
import { Then, When } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

async function resize(world: QbcWorld, size: string, opts: { shrink?: boolean; preallocation?: string }): Promise<'skipped' | void> {
  const image = world.image();
  const skip = world.needs(image.format, 'resize');
  if (skip) return skip;
  if (!world.iut.resize) return world.notApplicable(`${world.iut.name} has no resize operation`);
  world.lastError = await attempt(() => world.iut.resize!(image, { size, ...opts }));
}

When('the image is resized to {string}', function (this: QbcWorld, size: string) {
  return resize(this, size, {});
});

When('the image is resized to {string} with --shrink', function (this: QbcWorld, size: string) {
  return resize(this, size, { shrink: true });
});

When('the image is resized to {string} with preallocation {string}', function (this: QbcWorld, size: string, preallocation: string) {
  return resize(this, size, { preallocation });
});

Then('the resize succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the resize failed: ${(this.lastError as Error).message}`);
});

Then('the resize fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the resize', this.lastError, [word]);
});
