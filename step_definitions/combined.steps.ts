/**
 * The Done-when check of issue 3: one qcow2 image carrying every on-disk feature
 * at once, made by one implementation and read by the other. What a snapshot
 * holds is read back by applying it to a copy of the image, by each side on a
 * copy of its own (7.2 refuses to apply a snapshot while the image has
 * persistent bitmaps, so the copies lose their bitmaps first).
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { Then } from '@cucumber/cucumber';
import type { Adapter } from '../adapters/adapter.js';
import type { NamedImage, QbcWorld } from './world.js';

async function bitmapNames(adapter: Adapter, img: NamedImage): Promise<string[]> {
  const info = await adapter.info(img);
  const list = ((info['format-specific']?.data ?? {}) as { bitmaps?: Array<{ name: string }> }).bitmaps ?? [];
  return list.map((b) => b.name);
}

/** A copy of `img` named `name`, its bitmaps removed and snapshot `snapshot` applied, all by `adapter`. */
async function appliedCopy(world: QbcWorld, adapter: Adapter, img: NamedImage, name: string, snapshot: string): Promise<NamedImage> {
  const copy: NamedImage = { filename: world.path(`${name}.${img.format}`), format: img.format };
  await copyFile(img.filename, copy.filename);
  for (const b of await bitmapNames(adapter, copy)) await adapter.bitmap!(copy, { name: b, actions: ['remove'] });
  await adapter.snapshot!(copy, { action: 'apply', name: snapshot });
  world.images.set(name, copy);
  return copy;
}

Then('the oracle reads the same guest bytes in snapshot {string} as {string}', async function (this: QbcWorld, snapshot: string, name: string) {
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle configured');
  const img = this.image();
  for (const a of [this.iut, oracle]) {
    const skip = this.needs(img.format, 'snapshot', a) ?? this.needs(img.format, 'bitmap', a) ?? this.needs(img.format, 'read', a);
    if (skip) return skip;
    if (!a.snapshot || !a.bitmap) return this.notApplicable(`${a.name} has no snapshot or bitmap operation`);
  }
  const current = this.current;
  const theirs = await appliedCopy(this, oracle, img, name, snapshot);
  const mine = await appliedCopy(this, this.iut, img, `${name}-by-${this.iut.name}`, snapshot);
  this.current = current;
  const [a, b, c] = await Promise.all([oracle.guestSha256(theirs), this.iut.guestSha256(mine), oracle.guestSha256(mine)]);
  assert.equal(b, a, `snapshot "${snapshot}": ${this.iut.name} and ${oracle.name} each applied it and read different guest bytes`);
  assert.equal(c, a, `snapshot "${snapshot}": ${oracle.name} reads other guest bytes from the copy ${this.iut.name} applied it to`);
  return undefined;
});
