/** What qemu-img info / check / map / measure say about an image. */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { Then, When } from '@cucumber/cucumber';
import type { CheckResult, ImageInfo, MapEntry } from '../adapters/adapter.js';
import type { QbcWorld } from './world.js';
import { describeSize } from './support/units.js';

// --- info ---

/** The image's info, or 'skipped' when the implementation has no info or does not report one of `fields`. */
async function info(world: QbcWorld, name?: string, backingChain = false, fields: string[] = []): Promise<ImageInfo | 'skipped'> {
  const img = world.image(name);
  const skip = world.needs(img.format, 'info');
  if (skip) return skip;
  for (const f of fields) {
    const missing = world.needsInfoField(img.format, f);
    if (missing) return missing;
  }
  world.lastInfo = await world.iut.info(img, backingChain ? { backingChain } : {});
  return world.lastInfo;
}

function infoField(i: ImageInfo, field: string): unknown {
  return i[field];
}

function specificField(i: ImageInfo, field: string): unknown {
  return (i['format-specific']?.data as Record<string, unknown> | undefined)?.[field];
}

Then('the image info reports {string} {json}', async function (this: QbcWorld, field: string, value: unknown) {
  const i = await info(this, undefined, false, [field]);
  if (i === 'skipped') return i;
  assert.deepEqual(infoField(i, field), value, `info "${field}"`);
  return undefined;
});

Then('the info of {string} reports {string} {json}', async function (this: QbcWorld, name: string, field: string, value: unknown) {
  const i = await info(this, name, false, [field]);
  if (i === 'skipped') return i;
  assert.deepEqual(infoField(i, field), value, `info of "${name}": "${field}"`);
  return undefined;
});

Then('the image info reports format-specific {string} {json}', async function (this: QbcWorld, field: string, value: unknown) {
  const i = await info(this, undefined, false, [`format-specific.${field}`]);
  if (i === 'skipped') return i;
  assert.deepEqual(specificField(i, field), value, `info format-specific "${field}"`);
  return undefined;
});

Then('the image info reports a virtual size of {size}', async function (this: QbcWorld, size: number) {
  const i = await info(this, undefined, false, ['virtual-size']);
  if (i === 'skipped') return i;
  assert.equal(i['virtual-size'], size, `virtual size ${i['virtual-size']} is not ${describeSize(size)}`);
  return undefined;
});

Then('the info of {string} reports a virtual size of {size}', async function (this: QbcWorld, name: string, size: number) {
  const i = await info(this, name, false, ['virtual-size']);
  if (i === 'skipped') return i;
  assert.equal(i['virtual-size'], size, `virtual size of "${name}" ${i['virtual-size']} is not ${describeSize(size)}`);
  return undefined;
});

Then('the info of {string} shows a backing chain of {int} images', async function (this: QbcWorld, name: string, n: number) {
  const i = await info(this, name, true, ['backing-image']);
  if (i === 'skipped') return i;
  let depth = 0;
  for (let cur: ImageInfo | undefined = i; cur; cur = cur['backing-image'] as ImageInfo | undefined) depth++;
  assert.equal(depth, n, `backing chain of "${name}" has ${depth} images`);
  return undefined;
});

// --- host file ---

Then('the image file is at least {size} long', async function (this: QbcWorld, size: number) {
  const st = await stat(this.image().filename);
  assert.ok(st.size >= size, `the file is ${st.size} bytes long, less than ${describeSize(size)}`);
});

Then('the image file occupies at least {size} on the host', async function (this: QbcWorld, size: number) {
  const st = await stat(this.image().filename);
  assert.ok(st.blocks * 512 >= size, `the file occupies ${st.blocks * 512} bytes, less than ${describeSize(size)}`);
});

Then('the image file occupies less than {size} on the host', async function (this: QbcWorld, size: number) {
  const st = await stat(this.image().filename);
  assert.ok(st.blocks * 512 < size, `the file occupies ${st.blocks * 512} bytes, not less than ${describeSize(size)}`);
});

// --- check ---

async function check(world: QbcWorld, repair?: 'leaks' | 'all'): Promise<CheckResult | 'skipped'> {
  const img = world.image();
  const skip = world.needs(img.format, repair ? 'repair' : 'check');
  if (skip) return skip;
  world.lastCheck = await world.iut.check(img, repair ? { repair } : {});
  return world.lastCheck;
}

When('the image is checked', async function (this: QbcWorld) {
  const r = await check(this);
  return r === 'skipped' ? r : undefined;
});

When('the image is checked with repair {string}', async function (this: QbcWorld, mode: string) {
  if (mode !== 'leaks' && mode !== 'all') throw new Error(`repair mode must be "leaks" or "all", not "${mode}"`);
  const r = await check(this, mode);
  return r === 'skipped' ? r : undefined;
});

const count = (r: CheckResult, k: keyof CheckResult): number => (r[k] as number | undefined) ?? 0;

/** The check of the last When, or a fresh one. */
async function lastOrFreshCheck(world: QbcWorld): Promise<CheckResult | 'skipped'> {
  return world.lastCheck ?? check(world);
}

Then('the check reports no corruption', async function (this: QbcWorld) {
  const r = await lastOrFreshCheck(this);
  if (r === 'skipped') return r;
  assert.equal(count(r, 'check-errors'), 0, `check errors: ${JSON.stringify(r)}`);
  assert.equal(count(r, 'corruptions'), 0, `corruptions: ${JSON.stringify(r)}`);
  assert.equal(count(r, 'leaks'), 0, `leaks: ${JSON.stringify(r)}`);
  assert.equal(r.exitCode, 0, `check exit status ${r.exitCode}`);
  return undefined;
});

Then('the check reports {int} leaked cluster(s)', async function (this: QbcWorld, n: number) {
  const r = await lastOrFreshCheck(this);
  if (r === 'skipped') return r;
  assert.equal(count(r, 'leaks'), n, `leaks: ${JSON.stringify(r)}`);
  assert.equal(count(r, 'corruptions'), 0, `corruptions: ${JSON.stringify(r)}`);
  assert.equal(r.exitCode, n > 0 ? 3 : 0, `check exit status ${r.exitCode}`);
  return undefined;
});

Then('the check reports corruption', async function (this: QbcWorld) {
  const r = await lastOrFreshCheck(this);
  if (r === 'skipped') return r;
  assert.ok(count(r, 'corruptions') > 0, `no corruption reported: ${JSON.stringify(r)}`);
  assert.equal(r.exitCode, 2, `check exit status ${r.exitCode}`);
  return undefined;
});

Then('the repair fixed {int} leaked cluster(s)', function (this: QbcWorld, n: number) {
  assert.ok(this.lastCheck, 'no repair was run');
  assert.equal(count(this.lastCheck, 'leaks-fixed'), n, `leaks fixed: ${JSON.stringify(this.lastCheck)}`);
});

Then('the repair fixed the corruption', function (this: QbcWorld) {
  assert.ok(this.lastCheck, 'no repair was run');
  assert.ok(count(this.lastCheck, 'corruptions-fixed') > 0, `no corruption fixed: ${JSON.stringify(this.lastCheck)}`);
  assert.equal(count(this.lastCheck, 'corruptions'), 0, `corruptions left: ${JSON.stringify(this.lastCheck)}`);
  assert.equal(this.lastCheck.exitCode, 0, `check exit status ${this.lastCheck.exitCode}`);
});

Then('the check counts {int} compressed cluster(s)', async function (this: QbcWorld, n: number) {
  const r = await check(this);
  if (r === 'skipped') return r;
  assert.equal(count(r, 'compressed-clusters'), n, `compressed clusters: ${JSON.stringify(r)}`);
  return undefined;
});

Then('the check counts some compressed clusters', async function (this: QbcWorld) {
  const r = await check(this);
  if (r === 'skipped') return r;
  assert.ok(count(r, 'compressed-clusters') > 0, `no compressed clusters: ${JSON.stringify(r)}`);
  return undefined;
});

Then('the check counts {int} allocated cluster(s)', async function (this: QbcWorld, n: number) {
  const r = await check(this);
  if (r === 'skipped') return r;
  assert.equal(count(r, 'allocated-clusters'), n, `allocated clusters: ${JSON.stringify(r)}`);
  return undefined;
});

// --- map ---

function matches(e: MapEntry, kind: string): boolean {
  const depth = /depth (\d+)$/.exec(kind);
  if (depth) return e.data && e.present && e.depth === Number(depth[1]);
  switch (kind) {
    case 'data':
      return e.data && !e.zero && e.present && e.depth === 0;
    case 'zeroes':
      return e.zero;
    case 'unallocated':
      return !e.present;
    case 'allocated':
      return e.present && e.depth === 0;
    default:
      throw new Error(`unknown extent kind "${kind}"`);
  }
}

Then('the map shows {size} at offset {size} as {extent}', async function (this: QbcWorld, length: number, offset: number, kind: string) {
  const img = this.image();
  const skip = this.needs(img.format, 'map');
  if (skip) return skip;
  const map = await this.iut.map(img);
  this.lastMap = map;
  const end = offset + length;
  let covered = offset;
  for (const e of [...map].sort((a, b) => a.start - b.start)) {
    const eEnd = e.start + e.length;
    if (eEnd <= offset || e.start >= end) continue;
    assert.ok(e.start <= covered, `the map leaves ${covered}..${e.start} undescribed: ${JSON.stringify(map)}`);
    assert.ok(matches(e, kind), `the map shows ${e.start}+${e.length} as ${JSON.stringify(e)}, not as ${kind}`);
    covered = Math.max(covered, eEnd);
  }
  assert.ok(covered >= end, `the map does not describe ${covered}..${end}: ${JSON.stringify(map)}`);
  return undefined;
});

Then('the map covers the whole disk without gaps or overlaps', async function (this: QbcWorld) {
  const img = this.image();
  const skip = this.needs(img.format, 'map') ?? this.needs(img.format, 'info');
  if (skip) return skip;
  const map = await this.iut.map(img);
  const size = (await this.iut.info(img))['virtual-size'];
  let at = 0;
  for (const e of map) {
    assert.equal(e.start, at, `map entry starts at ${e.start}, expected ${at}: ${JSON.stringify(map)}`);
    assert.ok(e.length > 0, `empty map entry at ${e.start}`);
    at += e.length;
  }
  assert.equal(at, size, `the map ends at ${at}, the disk at ${size}`);
  return undefined;
});

// --- measure ---

When('the size of a {size} {format} image with {string} is measured', async function (this: QbcWorld, size: number, format: string, options: string) {
  const skip = this.needs(format, 'measure');
  if (skip) return skip;
  this.lastMeasure = await this.iut.measure({ outputFormat: format, size, ...(options ? { options } : {}) });
  this.lastMeasureRequest = { outputFormat: format, size, ...(options ? { options } : {}) };
  return undefined;
});

When('the size of the image converted to {format} is measured', async function (this: QbcWorld, format: string) {
  const img = this.image();
  const skip = this.needs(format, 'measure');
  if (skip) return skip;
  this.lastMeasureRequest = { outputFormat: format, source: img };
  this.lastMeasure = await this.iut.measure(this.lastMeasureRequest);
  return undefined;
});

Then('the measured required size is at least {size}', function (this: QbcWorld, size: number) {
  assert.ok(this.lastMeasure, 'nothing was measured');
  assert.ok(this.lastMeasure.required >= size, `required ${this.lastMeasure.required} < ${describeSize(size)}`);
});

Then('the measured required size is less than {size}', function (this: QbcWorld, size: number) {
  assert.ok(this.lastMeasure, 'nothing was measured');
  assert.ok(this.lastMeasure.required < size, `required ${this.lastMeasure.required} >= ${describeSize(size)}`);
});

Then('the measured fully allocated size is at least {size}', function (this: QbcWorld, size: number) {
  assert.ok(this.lastMeasure, 'nothing was measured');
  assert.ok(this.lastMeasure['fully-allocated'] >= size, `fully-allocated ${this.lastMeasure['fully-allocated']} < ${describeSize(size)}`);
});

Then('the measured required size is at most the fully allocated size', function (this: QbcWorld) {
  const m = this.lastMeasure;
  assert.ok(m, 'nothing was measured');
  assert.ok(m.required <= m['fully-allocated'], `required ${m.required} > fully-allocated ${m['fully-allocated']}`);
});

Then('the image file is no longer than the measured fully allocated size', async function (this: QbcWorld) {
  assert.ok(this.lastMeasure, 'nothing was measured');
  const st = await stat(this.image().filename);
  assert.ok(st.size <= this.lastMeasure['fully-allocated'], `file ${st.size} > fully-allocated ${this.lastMeasure['fully-allocated']}`);
});

Then('the image file is no longer than the measured required size', async function (this: QbcWorld) {
  assert.ok(this.lastMeasure, 'nothing was measured');
  const st = await stat(this.image().filename);
  assert.ok(st.size <= this.lastMeasure.required, `file ${st.size} > required ${this.lastMeasure.required}`);
});

Then('the image info reports encryption {string} {json}', async function (this: QbcWorld, field: string, value: unknown) {
  const i = await info(this, undefined, false, ['format-specific.encrypt']);
  if (i === 'skipped') return i;
  const encrypt = specificField(i, 'encrypt') as Record<string, unknown> | undefined;
  assert.ok(encrypt, `info has no format-specific "encrypt": ${JSON.stringify(i['format-specific'])}`);
  assert.deepEqual(encrypt[field], value, `info encryption "${field}"`);
  return undefined;
});
