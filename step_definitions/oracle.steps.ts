/**
 * Cross-checks: what the implementation under test wrote, a second implementation
 * (the oracle) must accept — consistent, same guest bytes, same info. Without an
 * oracle these steps are not applicable, never passed.
 */
import assert from 'node:assert/strict';
import { Then } from '@cucumber/cucumber';
import { missingInfoField, type Adapter, type ImageInfo, type Operation } from '../adapters/adapter.js';
import type { NamedImage, QbcWorld } from './world.js';

function oracleFor(world: QbcWorld, img: NamedImage, ...ops: Operation[]): Adapter | 'skipped' {
  const oracle = world.oracle;
  if (!oracle) return world.notApplicable('no oracle configured');
  for (const op of ops) {
    const skip = world.needs(img.format, op, oracle);
    if (skip) return skip;
  }
  return oracle;
}

async function consistent(world: QbcWorld, name?: string): Promise<'skipped' | void> {
  const img = world.image(name);
  const oracle = oracleFor(world, img, 'check');
  if (oracle === 'skipped') return oracle;
  const r = await oracle.check(img);
  const bad = (r['check-errors'] ?? 0) + (r.corruptions ?? 0) + (r.leaks ?? 0);
  assert.ok(bad === 0 && r.exitCode === 0, `${oracle.name} finds ${name ?? 'the image'} inconsistent: ${JSON.stringify(r)}`);
}

Then('the oracle finds the image consistent', function (this: QbcWorld) {
  return consistent(this);
});

Then('the oracle finds {string} consistent', function (this: QbcWorld, name: string) {
  return consistent(this, name);
});

async function sameBytes(world: QbcWorld, name?: string): Promise<'skipped' | void> {
  const img = world.image(name);
  const oracle = oracleFor(world, img, 'read');
  if (oracle === 'skipped') return oracle;
  const skip = world.needs(img.format, 'read');
  if (skip) return skip;
  const [mine, theirs] = await Promise.all([world.iut.guestSha256(img), oracle.guestSha256(img)]);
  assert.equal(mine, theirs, `${world.iut.name} and ${oracle.name} read different guest bytes from ${name ?? 'the image'}`);
}

Then('the oracle reads the same guest bytes', function (this: QbcWorld) {
  return sameBytes(this);
});

Then('the oracle reads the same guest bytes from {string}', function (this: QbcWorld, name: string) {
  return sameBytes(this, name);
});

/**
 * The facts of info every implementation must agree on (not sizes on the host, not paths),
 * among those `reported` says the implementation under test reports (Capabilities.infoFields).
 */
function comparable(i: ImageInfo, reported: (field: string) => boolean): Record<string, unknown> {
  const spec = (i['format-specific']?.data ?? {}) as Record<string, unknown>;
  const pick = (o: Record<string, unknown>, keys: string[], prefix = '') =>
    Object.fromEntries(keys.filter((k) => o[k] !== undefined && reported(prefix + k)).map((k) => [k, o[k]]));
  return {
    ...pick(i, ['format', 'virtual-size', 'cluster-size', 'backing-filename', 'backing-filename-format', 'dirty-flag', 'encrypted']),
    'format-specific': pick(spec, ['compat', 'lazy-refcounts', 'refcount-bits', 'corrupt', 'extended-l2', 'compression-type', 'data-file', 'data-file-raw',
      'cipher-alg', 'cipher-mode', 'ivgen-alg', 'ivgen-hash-alg', 'hash-alg', 'payload-offset', 'uuid', 'master-key-iters'], 'format-specific.'),
  };
}

async function sameInfo(world: QbcWorld, name?: string): Promise<'skipped' | void> {
  const img = world.image(name);
  const oracle = oracleFor(world, img, 'info');
  if (oracle === 'skipped') return oracle;
  const skip = world.needs(img.format, 'info');
  if (skip) return skip;
  const [mine, theirs] = await Promise.all([world.iut.info(img), oracle.info(img)]);
  const reported = (field: string) => missingInfoField(world.iut, img.format, field) === null;
  const expected = comparable(theirs, reported);
  if (Object.keys(expected).length === 1 && Object.keys(expected['format-specific'] as object).length === 0) {
    return world.notApplicable(`${world.iut.name} reports none of the info fields ${oracle.name} reports of the image`);
  }
  assert.deepEqual(comparable(mine, reported), expected, `${world.iut.name} and ${oracle.name} disagree on the info of ${name ?? 'the image'}`);
}

Then('the oracle reports the same info', function (this: QbcWorld) {
  return sameInfo(this);
});

Then('the oracle reports the same info for {string}', function (this: QbcWorld, name: string) {
  return sameInfo(this, name);
});

Then('the oracle reports the same map', async function (this: QbcWorld) {
  const img = this.image();
  const oracle = oracleFor(this, img, 'map');
  if (oracle === 'skipped') return oracle;
  const skip = this.needs(img.format, 'map');
  if (skip) return skip;
  // Host offsets legitimately differ between implementations; what the guest sees must not.
  const strip = (m: Awaited<ReturnType<Adapter['map']>>) => m.map(({ start, length, depth, present, zero, data }) => ({ start, length, depth, present, zero, data }));
  assert.deepEqual(strip(await this.iut.map(img)), strip(await oracle.map(img)), `${this.iut.name} and ${oracle.name} map the image differently`);
  return undefined;
});

Then('the oracle measures the same sizes', async function (this: QbcWorld) {
  const req = this.lastMeasureRequest;
  assert.ok(req && this.lastMeasure, 'nothing was measured');
  const oracle = this.oracle;
  if (!oracle) return this.notApplicable('no oracle configured');
  const skip = this.needs(req.outputFormat, 'measure', oracle);
  if (skip) return skip;
  const theirs = await oracle.measure(req);
  assert.equal(this.lastMeasure.required, theirs.required, `required: ${this.iut.name} ${this.lastMeasure.required}, ${oracle.name} ${theirs.required}`);
  assert.equal(this.lastMeasure['fully-allocated'], theirs['fully-allocated'], `fully-allocated: ${this.iut.name} ${this.lastMeasure['fully-allocated']}, ${oracle.name} ${theirs['fully-allocated']}`);
  return undefined;
});
