/**
 * Several-file golden images (a vmdk descriptor and its extents): the recipe's
 * extraFiles and the manifest's record of them are checked, naming the field,
 * and a manifest that disagrees with its recipe is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinCorpus } from '../runner/corpus/corpus-set.js';
import { structuralErrors, type ManifestEntry } from '../runner/corpus/manifest.js';
import { validateRecipes, RecipeError, type Recipe } from '../runner/corpus/recipe.js';

const SHA = 'a'.repeat(64);

function recipe(extraFiles?: unknown): Recipe {
  const r: Record<string, unknown> = {
    id: 'vmdk-flat', description: 'a flat vmdk', spec: ['vmdk.subformat'], tags: [],
    create: { format: 'vmdk', size: 1048576, options: 'subformat=monolithicFlat' }, deterministic: true,
  };
  if (extraFiles !== undefined) r.extraFiles = extraFiles;
  return r as unknown as Recipe;
}

function entry(extra?: ManifestEntry['extraFiles']): ManifestEntry {
  const e: ManifestEntry = {
    id: 'vmdk-flat', format: 'vmdk', file: 'images/vmdk-flat.vmdk', recipe: { create: recipe().create },
    fileSha256: SHA, guestSha256: SHA, info: {}, map: [], check: null, tags: [], spec: ['vmdk.subformat'],
  };
  if (extra) e.extraFiles = extra;
  return e;
}

test('a recipe names its other files as plain, distinct names other than the image', () => {
  assert.equal(validateRecipes([recipe(['vmdk-flat-flat.vmdk'])])[0].extraFiles?.[0], 'vmdk-flat-flat.vmdk');
  for (const bad of [[], ['../x.vmdk'], ['/abs.vmdk'], ['vmdk-flat.vmdk'], ['a.vmdk', 'a.vmdk'], 'a.vmdk', [7]]) {
    assert.throws(() => validateRecipes([recipe(bad)]), (e: unknown) => e instanceof RecipeError && e.field === 'extraFiles', JSON.stringify(bad));
  }
});

test('the manifest records each other file under images/ with its sha256', () => {
  const ok = { producer: 'qemu-img', entries: [entry([{ file: 'images/vmdk-flat-flat.vmdk', fileSha256: SHA }])] };
  assert.deepEqual(structuralErrors(ok), []);
  const bad = { producer: 'qemu-img', entries: [entry([{ file: 'vmdk-flat-flat.vmdk', fileSha256: 'nope' }])] };
  const errs = structuralErrors(bad);
  assert.ok(errs.some((e) => e.includes('extraFiles[0].file')), errs.join('\n'));
  assert.ok(errs.some((e) => e.includes('extraFiles[0].fileSha256')), errs.join('\n'));
});

test('a manifest whose other files are not the recipe\'s is out of sync', () => {
  const r = recipe(['vmdk-flat-flat.vmdk']);
  assert.equal(joinCorpus('q', [entry([{ file: 'images/vmdk-flat-flat.vmdk', fileSha256: SHA }])], [r]).items[0].extraFiles?.length, 1);
  assert.throws(() => joinCorpus('q', [entry()], [r]), /extraFiles/);
  assert.throws(() => joinCorpus('q', [entry([{ file: 'images/other.vmdk', fileSha256: SHA }])], [r]), /extraFiles/);
  assert.throws(() => joinCorpus('q', [entry([{ file: 'images/vmdk-flat-flat.vmdk', fileSha256: SHA }])], [recipe()]), /extraFiles/);
});
