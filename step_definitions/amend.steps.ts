/** qemu-img amend, in the suite's words. */
import { Then, When } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

When('the image is amended with {string}', async function (this: QbcWorld, options: string) {
  const image = this.image();
  const skip = this.needs(image.format, 'amend');
  if (skip) return skip;
  if (!this.iut.amend) return this.notApplicable(`${this.iut.name} has no amend operation`);
  this.lastError = await attempt(() => this.iut.amend!(image, { options }));
  return undefined;
});

Then('the amendment succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the amendment failed: ${(this.lastError as Error).message}`);
});

Then('the amendment fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the amendment', this.lastError, [word]);
});
