/** qemu-img rebase and commit: changing and folding backing chains, in the suite's words. */
import { basename } from 'node:path';
import { Then, When } from '@cucumber/cucumber';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';

async function rebase(world: QbcWorld, name: string, onto: string | null, unsafe: boolean): Promise<'skipped' | void> {
  const image = world.image(name);
  const skip = world.needs(image.format, 'rebase');
  if (skip) return skip;
  if (!world.iut.rebase) return world.notApplicable(`${world.iut.name} has no rebase operation`);
  const target = onto === null ? null : world.image(onto);
  world.lastError = await attempt(() => world.iut.rebase!(image, {
    backingFile: target ? basename(target.filename) : '',
    backingFormat: target?.format,
    unsafe,
  }));
  world.current = name;
}

async function commit(world: QbcWorld, name: string, req: { base?: string; keep?: boolean }): Promise<'skipped' | void> {
  const image = world.image(name);
  const skip = world.needs(image.format, 'commit');
  if (skip) return skip;
  if (!world.iut.commit) return world.notApplicable(`${world.iut.name} has no commit operation`);
  const base = req.base ? world.image(req.base).filename : undefined;
  world.lastError = await attempt(() => world.iut.commit!(image, { base, keep: req.keep }));
  world.current = name;
}

When('image {string} is rebased onto {string}', function (this: QbcWorld, name: string, onto: string) {
  return rebase(this, name, onto, false);
});

When('image {string} is rebased onto {string} unsafely', function (this: QbcWorld, name: string, onto: string) {
  return rebase(this, name, onto, true);
});

When('image {string} is rebased onto no backing file', function (this: QbcWorld, name: string) {
  return rebase(this, name, null, false);
});

When('image {string} is committed', function (this: QbcWorld, name: string) {
  return commit(this, name, {});
});

When('image {string} is committed keeping its data', function (this: QbcWorld, name: string) {
  return commit(this, name, { keep: true });
});

When('image {string} is committed into {string}', function (this: QbcWorld, name: string, base: string) {
  return commit(this, name, { base });
});

Then('the rebase succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the rebase failed: ${(this.lastError as Error).message}`);
});

Then('the commit succeeds', function (this: QbcWorld) {
  if (this.lastError !== null) throw new Error(`the commit failed: ${(this.lastError as Error).message}`);
});

Then('the commit fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the commit', this.lastError, [word]);
});
