/**
 * Steps of the generated corpus feature: a golden image staged in the
 * scenario's scratch directory, compared with what qemu-img recorded, and
 * recipes replayed by the implementation under test.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { Given, Then, When } from '@cucumber/cucumber';
import { missingCapability, type ImageRef } from '../adapters/adapter.js';
import { checkDiff, extraFilesDiff, guestDiff, infoDiff, mapDiff, readGap, recreate, recreateGap, stageEntry } from '../runner/corpus/checks.js';
import { maskedSha256, sha256File } from '../runner/corpus/files.js';
import { CORPUS_DIR } from '../runner/corpus/paths.js';
import { loadCorpus, type Corpus, type CorpusItem } from '../runner/corpus/corpus-set.js';
import type { QbcWorld } from './world.js';

let corpus: Promise<Corpus> | null = null;
const theCorpus = (): Promise<Corpus> => (corpus ??= loadCorpus());

interface CorpusState {
  entry: CorpusItem;
  golden?: ImageRef;
  recreated?: ImageRef;
}
const state = new WeakMap<QbcWorld, CorpusState>();

async function entryNamed(id: string): Promise<CorpusItem> {
  const e = (await theCorpus()).items.find((x) => x.id === id);
  if (!e) throw new Error(`corpus/manifest.json has no entry "${id}" (is the feature out of sync? run \`qbc corpus feature --check\`)`);
  return e;
}

function current(world: QbcWorld): CorpusState {
  const s = state.get(world);
  if (!s) throw new Error('no golden image in this scenario');
  return s;
}

function assertNoDiff(diffs: string[], what: string): void {
  assert.deepEqual(diffs, [], `${what} differs from the manifest:\n  ${diffs.join('\n  ')}`);
}

Given('the golden image {string}', async function (this: QbcWorld, id: string) {
  const entry = await entryNamed(id);
  const gap = readGap(this.iut, entry);
  if (gap) return this.notApplicable(gap);
  const golden = await stageEntry(await theCorpus(), entry, join(this.scratch, 'golden'));
  state.set(this, { entry, golden });
  return undefined;
});

/**
 * A reader-only implementation (dmg2img, libyal, ...) has no info, map or check: as in
 * `qbc corpus verify`, those parts are left out (and said so in the report) and the scenario is
 * judged on the guest bytes, which every implementation that reads has.
 */
Then('the implementation reports the recorded info', async function (this: QbcWorld) {
  const { entry, golden } = current(this);
  if (partMissing(this, entry, 'info')) return 'skipped';
  assertNoDiff(await infoDiff(this.iut, entry, golden!), 'info');
});

Then('the implementation reports the recorded map', async function (this: QbcWorld) {
  const { entry, golden } = current(this);
  if (partMissing(this, entry, 'map')) return 'skipped';
  assertNoDiff(await mapDiff(this.iut, entry, golden!), 'map');
});

Then('the implementation reports the recorded check result', async function (this: QbcWorld) {
  const { entry, golden } = current(this);
  if (partMissing(this, entry, 'check')) return 'skipped';
  assert.notEqual(entry.check, null, `${entry.id} has no recorded check result`);
  assertNoDiff(await checkDiff(this.iut, entry, golden!), 'check');
});

/**
 * A reader-only implementation (no info, map or check) has read the guest bytes by the time
 * these steps run; the part it cannot do makes the scenario not applicable, saying so.
 */
function partMissing(world: QbcWorld, entry: CorpusItem, op: 'info' | 'map' | 'check'): boolean {
  const why = missingCapability(world.iut, entry.format, op);
  if (why === null) return false;
  world.notApplicable(`${why} (the guest bytes were compared before this step)`);
  return true;
}

Then('the implementation reads the recorded guest bytes', async function (this: QbcWorld) {
  const { entry, golden } = current(this);
  assertNoDiff(await guestDiff(this.iut, entry, golden!), 'guest bytes');
  // reading must leave the image alone
  assert.equal(await sha256File(golden!.filename), entry.fileSha256, `reading ${entry.id} changed its file`);
  for (const x of entry.extraFiles ?? []) {
    const name = x.file.slice(x.file.lastIndexOf('/') + 1);
    assert.equal(await sha256File(join(dirname(golden!.filename), name)), x.fileSha256, `reading ${entry.id} changed its file ${name}`);
  }
});

When('the implementation recreates the golden image {string} from its recipe', async function (this: QbcWorld, id: string) {
  const entry = await entryNamed(id);
  const gap = recreateGap(this.iut, entry);
  if (gap) return this.notApplicable(gap);
  const recreated = await recreate(this.iut, await theCorpus(), entry, join(this.scratch, 'recreate'));
  state.set(this, { entry, recreated });
  return undefined;
});

Then('the recreated image is byte-identical to the golden image', async function (this: QbcWorld) {
  const { entry, recreated } = current(this);
  assert.ok(entry.deterministic, `${entry.id} is not deterministic; compare guest bytes instead`);
  // the other files of a several-file image (a vmdk's extents) are judged alike
  assertNoDiff(await extraFilesDiff(entry, dirname(recreated!.filename)), 'the other files of the recreated image');
  if (entry.mask) {
    // random fields (and the checksums over them) excluded, as corpus verify judges it
    const golden = join(CORPUS_DIR, entry.file);
    assert.equal(await maskedSha256(recreated!.filename, entry.mask), await maskedSha256(golden, entry.mask),
      `the recreated ${entry.id} differs from the golden image outside its masked fields (${entry.mask.map((m) => m.field).join(', ')})`);
    return;
  }
  assert.equal(await sha256File(recreated!.filename), entry.fileSha256, `the recreated ${entry.id} is not byte-identical to the golden image`);
});

Then('the recreated image shows the recorded guest bytes', async function (this: QbcWorld) {
  const { entry, recreated } = current(this);
  // the oracle reads when there is one, so an IUT cannot vouch for its own output
  assertNoDiff(await guestDiff(this.oracle ?? this.iut, entry, recreated!), 'guest bytes of the recreated image');
});
