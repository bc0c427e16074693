/** A writer that dies before it closes the image (qemu-io's abort), in the suite's words. */
import { Given } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';

Given('{size} of pattern {pattern} (is )written at offset {size} by a writer that is killed before it closes', async function (this: QbcWorld, length: number, pattern: number, offset: number) {
  const image = this.image();
  const skip = this.needs(image.format, 'write');
  if (skip) return skip;
  await this.iut.io(image, [{ op: 'write', offset, length, pattern }, { op: 'crash' }]);
  return undefined;
});
