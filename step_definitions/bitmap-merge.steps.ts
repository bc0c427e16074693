/**
 * qemu-img bitmap --merge (from the same image, or from another one with -b/-F)
 * and bitmaps that follow a resize, in the suite's words. What a bitmap marks is
 * judged by bitmap.steps.ts's reading of the file.
 */
import { Given, When } from '@cucumber/cucumber';
import type { BitmapRequest, ImageRef } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { attempt } from './support/errors.js';
import { defect, makeBaseImage } from './support/hostile-qcow2.js';

function capable(world: QbcWorld): 'skipped' | null {
  const skip = world.needs(world.image().format, 'bitmap');
  if (skip) return skip;
  if (!world.iut.bitmap) return world.notApplicable(`${world.iut.name} has no bitmap operation`);
  return null;
}

/** A named image of the scenario, or (for a name it never made) a file that does not exist. */
function sourceRef(world: QbcWorld, name: string): ImageRef & { format: string } {
  return world.images.get(name) ?? { filename: world.path(`${name}.qcow2`), format: 'qcow2' };
}

function mergeRequest(world: QbcWorld, source: string, target: string, from?: string): BitmapRequest {
  const req: BitmapRequest = { name: target, actions: ['merge'], merge: source };
  if (from !== undefined) req.mergeFrom = sourceRef(world, from);
  return req;
}

Given('bitmap {string} is added with granularity {string}', async function (this: QbcWorld, name: string, granularity: string) {
  const skip = capable(this);
  if (skip) return skip;
  await this.iut.bitmap!(this.image(), { name, actions: ['add'], granularity });
  return undefined;
});

When(/^bitmap "([^"]+)"(?: of "([^"]+)")? is merged into bitmap "([^"]+)"$/, async function (this: QbcWorld, source: string, from: string | undefined, target: string) {
  const skip = capable(this);
  if (skip) return skip;
  await this.iut.bitmap!(this.image(), mergeRequest(this, source, target, from ?? undefined));
  return undefined;
});

When(/^merging bitmap "([^"]+)" (?:of "([^"]+)"|from the same image) into bitmap "([^"]+)" is attempted$/, async function (this: QbcWorld, source: string, from: string | undefined, target: string) {
  const skip = capable(this);
  if (skip) return skip;
  this.sha256Before = await sha256File(this.image().filename);
  this.lastError = await attempt(() => this.iut.bitmap!(this.image(), mergeRequest(this, source, target, from ?? undefined)));
  return undefined;
});

/** Made by real qemu-img, then the bitmaps extension's directory offset moved 64 GiB out (the current image stays). */
Given('a qcow2 image {string} whose bitmap directory points outside the file', async function (this: QbcWorld, name: string) {
  const current = this.current;
  const img = this.declare(name, 'qcow2');
  await makeBaseImage('qemu-img', img.filename, 1024 * 1024);
  await defect('bitmap directory points outside the file').apply(img.filename);
  if (current) this.current = current;
});
