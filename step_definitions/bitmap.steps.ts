/**
 * qcow2 persistent dirty bitmaps (qemu-img bitmap), in the suite's words. What a
 * bitmap marks is read straight from the file by the small parser below (the
 * qcow2 specification's bitmaps extension), so it judges every implementation alike.
 */
import assert from 'node:assert/strict';
import { Given, Then, When } from '@cucumber/cucumber';
import type { Adapter, BitmapRequest } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { assertRefusalNaming, attempt } from './support/errors.js';
import { readAt, readField } from './support/qcow2-header.js';

function capable(world: QbcWorld, adapter: Adapter): 'skipped' | null {
  const skip = world.needs(world.image().format, 'bitmap', adapter);
  if (skip) return skip;
  if (!adapter.bitmap) return world.notApplicable(`${adapter.name} has no bitmap operation`);
  return null;
}

const VERB: Record<string, BitmapRequest['actions'][number]> = { added: 'add', removed: 'remove', cleared: 'clear', enabled: 'enable', disabled: 'disable' };

async function run(world: QbcWorld, adapter: Adapter, req: BitmapRequest): Promise<'skipped' | undefined> {
  const skip = capable(world, adapter);
  if (skip) return skip;
  await adapter.bitmap!(world.image(), req);
  return undefined;
}

Given(/^bitmap "([^"]+)" is (added|removed|cleared|enabled|disabled)$/, function (this: QbcWorld, name: string, verb: string) {
  return run(this, this.iut, { name, actions: [VERB[verb]] });
});

Given('bitmap {string} is added disabled with granularity {string}', function (this: QbcWorld, name: string, granularity: string) {
  return run(this, this.iut, { name, actions: ['add', 'disable'], granularity });
});

Given('the oracle adds bitmap {string}', function (this: QbcWorld, name: string) {
  if (!this.oracle) return this.notApplicable('no oracle configured');
  return run(this, this.oracle, { name, actions: ['add'] });
});

When(/^adding bitmap "([^"]+)"(?: with granularity "([^"]+)")? is attempted$/, async function (this: QbcWorld, name: string, granularity?: string) {
  const skip = capable(this, this.iut);
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.bitmap!(this.image(), { name, actions: ['add'], granularity: granularity ?? undefined }));
  return undefined;
});

When('removing bitmap {string} is attempted', async function (this: QbcWorld, name: string) {
  const skip = capable(this, this.iut);
  if (skip) return skip;
  this.lastError = await attempt(() => this.iut.bitmap!(this.image(), { name, actions: ['remove'] }));
  return undefined;
});

Then('the bitmap operation fails naming {string}', function (this: QbcWorld, word: string) {
  assertRefusalNaming('the bitmap operation', this.lastError, [word]);
});

/** "b0 auto 65536, b1 - 131072": name, flags joined by "+" ("-" for none), granularity */
function expected(text: string): Array<{ flags: string[]; name: string; granularity: number }> {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const [name, flags, g] = s.split(/\s+/);
    return { flags: flags === '-' ? [] : flags.split('+'), name, granularity: Number(g) };
  });
}

async function listed(world: QbcWorld, adapter: Adapter): Promise<unknown> {
  const info = await adapter.info(world.image());
  return ((info['format-specific']?.data ?? {}) as { bitmaps?: unknown }).bitmaps ?? [];
}

Then('the image info lists the bitmaps {string}', async function (this: QbcWorld, text: string) {
  assert.deepEqual(await listed(this, this.iut), expected(text), `${this.iut.name} info lists other bitmaps`);
});

Then('the oracle lists the bitmaps {string}', async function (this: QbcWorld, text: string) {
  if (!this.oracle) return this.notApplicable('no oracle configured');
  assert.deepEqual(await listed(this, this.oracle), expected(text), `${this.oracle.name} info lists other bitmaps`);
  return undefined;
});

/** The bits of bitmap `name` as stored in the file: [granularity, set bit numbers]. */
async function storedBits(path: string, name: string): Promise<{ granularity: number; bits: number[] }> {
  const cs = 2 ** Number(await readField(path, 'cluster_bits'));
  let pos = Number(await readField(path, 'header_length'));
  for (;;) {
    const h = await readAt(path, pos, 8);
    const type = h.readUInt32BE(0);
    if (type === 0) throw new Error(`${path} has no bitmaps extension`);
    if (type === 0x23852875) break;
    pos += 8 + Math.ceil(h.readUInt32BE(4) / 8) * 8;
  }
  const ext = await readAt(path, pos + 8, 24);
  const dir = await readAt(path, Number(ext.readBigUInt64BE(16)), Number(ext.readBigUInt64BE(8)));
  let p = 0;
  for (let i = 0; i < ext.readUInt32BE(0); i++) {
    const nameLen = dir.readUInt16BE(p + 18);
    const extra = dir.readUInt32BE(p + 20);
    if (dir.toString('utf8', p + 24 + extra, p + 24 + extra + nameLen) === name) {
      const table = await readAt(path, Number(dir.readBigUInt64BE(p)), dir.readUInt32BE(p + 8) * 8);
      const bits: number[] = [];
      for (let j = 0; j < table.length / 8; j++) {
        const e = table.readBigUInt64BE(j * 8);
        const data = Number(e & 0x00fffffffffffe00n);
        if (!data) {
          if (e & 1n) for (let k = 0; k < cs * 8; k++) bits.push(j * cs * 8 + k);
          continue;
        }
        const block = await readAt(path, data, cs);
        for (let k = 0; k < cs * 8; k++) if (block[k >> 3] & (1 << (k & 7))) bits.push(j * cs * 8 + k);
      }
      return { granularity: 2 ** dir[p + 17], bits };
    }
    p += Math.ceil((24 + extra + nameLen) / 8) * 8;
  }
  throw new Error(`${path} has no bitmap "${name}"`);
}

Then('bitmap {string} marks exactly the {size} at offset {size}', async function (this: QbcWorld, name: string, length: number, offset: number) {
  const { granularity, bits } = await storedBits(this.image().filename, name);
  const want: number[] = [];
  for (let b = Math.floor(offset / granularity); b <= Math.floor((offset + length - 1) / granularity); b++) want.push(b);
  assert.deepEqual(bits, want, `bitmap "${name}" (granularity ${granularity}) marks other chunks`);
});

Then('bitmap {string} marks nothing', async function (this: QbcWorld, name: string) {
  const { bits } = await storedBits(this.image().filename, name);
  assert.deepEqual(bits, [], `bitmap "${name}" still marks chunks`);
});
