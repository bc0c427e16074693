/**
 * qemu-img bitmap --merge (from the same image, or from another one with -b/-F)
 * and bitmaps that follow a resize, in the suite's words. What a bitmap marks is
 * judged by bitmap.steps.ts's reading of the file.
 */
import { Given, When } from '@cucumber/cucumber';
import type { BitmapRequest, ConvertRequest, ImageRef } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { sha256File } from '../adapters/qemu.js';
import { attempt } from './support/errors.js';
import { defect, makeBaseImage } from './support/hostile-qcow2.js';
import { readAt, readField, writeAt } from './support/qcow2-header.js';

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

// ---- qemu-img convert --bitmaps [--skip-broken-bitmaps] ------------------------------

async function convertWithBitmaps(world: QbcWorld, format: string, options: string | undefined, skipBroken: boolean, mayFail: boolean): Promise<'skipped' | undefined> {
  const source = world.image();
  const skip = world.needs(source.format, 'read') ?? world.needs(format, 'convert');
  if (skip) return skip;
  const sourceName = world.current;
  const target = world.declare('converted', format);
  const req: ConvertRequest = { source, target, bitmaps: true };
  if (options) req.options = options;
  if (skipBroken) req.skipBrokenBitmaps = true;
  if (mayFail) {
    world.lastError = await attempt(() => world.iut.convert(req));
    world.current = sourceName;
  } else await world.iut.convert(req);
  return undefined;
}

When(/^the image is converted to (qcow2|raw) with bitmaps( skipping broken ones)?$/, function (this: QbcWorld, format: string, skipBroken?: string) {
  return convertWithBitmaps(this, format, undefined, !!skipBroken, false);
});

When(/^a conversion of the image to (qcow2|raw)(?: with "([^"]*)")? with bitmaps is attempted$/, function (this: QbcWorld, format: string, options?: string) {
  return convertWithBitmaps(this, format, options || undefined, false, true);
});

/** Sets the in-use flag of a bitmap in the file, as a program killed while the bitmap was loaded leaves it. */
Given('bitmap {string} is marked in use', async function (this: QbcWorld, name: string) {
  const path = this.image().filename;
  let pos = Number(await readField(path, 'header_length'));
  for (;;) {
    const h = await readAt(path, pos, 8);
    if (h.readUInt32BE(0) === 0) throw new Error(`${path} has no bitmaps extension`);
    if (h.readUInt32BE(0) === 0x23852875) break;
    pos += 8 + Math.ceil(h.readUInt32BE(4) / 8) * 8;
  }
  const ext = await readAt(path, pos + 8, 24);
  const dirAt = Number(ext.readBigUInt64BE(16));
  const dir = await readAt(path, dirAt, Number(ext.readBigUInt64BE(8)));
  let p = 0;
  for (let i = 0; i < ext.readUInt32BE(0); i++) {
    const nameLen = dir.readUInt16BE(p + 18);
    const extra = dir.readUInt32BE(p + 20);
    if (dir.toString('utf8', p + 24 + extra, p + 24 + extra + nameLen) === name) {
      const flags = Buffer.alloc(4);
      flags.writeUInt32BE((dir.readUInt32BE(p + 12) | 1) >>> 0);
      await writeAt(path, dirAt + p + 12, flags);
      return;
    }
    p += Math.ceil((24 + extra + nameLen) / 8) * 8;
  }
  throw new Error(`${path} has no bitmap "${name}"`);
});
