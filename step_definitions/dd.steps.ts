/** qemu-img dd, in the suite's words: part or all of one image copied into a new one. */
import { When, Then } from '@cucumber/cucumber';
import type { DdRequest } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

function request(world: QbcWorld, source: string, format: string, target: string, operands: string): DdRequest | 'skipped' {
  const src = world.image(source);
  const skip = world.needs(src.format, 'dd');
  if (skip) return skip;
  if (!world.iut.dd) return world.notApplicable(`${world.iut.name} has no dd operation`);
  const out = world.declare(target, format);
  return { source: src, target: { filename: out.filename, format }, operands: operands.split(/\s+/).filter(Boolean) };
}

When('dd copies {string} to a {format} image {string} with {string}', async function (this: QbcWorld, source: string, format: string, target: string, operands: string) {
  const req = request(this, source, format, target, operands);
  if (req === 'skipped') return req;
  await this.iut.dd!(req);
  return undefined;
});

When('dd copying {string} with {string} is attempted', async function (this: QbcWorld, source: string, operands: string) {
  const req = request(this, source, 'raw', 'out', operands);
  if (req === 'skipped') return req;
  this.lastError = await attempt(() => this.iut.dd!(req));
  return undefined;
});

Then('dd fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('dd', this.lastError, [word]);
});
