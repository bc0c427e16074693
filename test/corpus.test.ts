/**
 * The committed corpus is whole: manifest valid against its schema, every image
 * present with its recorded sha256, the generated feature in sync, recipes and
 * manifest agreeing; and `corpus verify` can fail.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCorpus } from '../runner/corpus/corpus-set.js';
import { renderFeature } from '../runner/corpus/feature.js';
import { sha256File } from '../runner/corpus/files.js';
import { readManifest, schemaErrors, structuralErrors, type Manifest } from '../runner/corpus/manifest.js';
import { diffJson } from '../runner/corpus/normalise.js';
import { CORPUS_DIR, FEATURE_FILE, MANIFEST_FILE, RECIPES_FILE } from '../runner/corpus/paths.js';
import { loadRecipes, validateRecipes } from '../runner/corpus/recipe.js';
import { verify } from '../runner/corpus/verify.js';

async function manifest(): Promise<Manifest> {
  const m = await readManifest(MANIFEST_FILE);
  assert.ok(m, 'corpus/manifest.json exists');
  return m;
}

function hasQemu(): boolean {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('the manifest is valid against schemas/corpus-manifest.json', async (t) => {
  const m = await manifest();
  assert.deepEqual(structuralErrors(m), []);
  const errs = await schemaErrors(m);
  if (errs === null) return t.skip('schemas/corpus-manifest.json does not exist');
  assert.deepEqual([...new Set(errs)], []);
});

test('every golden image exists with its recorded sha256', async () => {
  const m = await manifest();
  assert.ok(m.entries.length >= 45, `at least 45 entries (${m.entries.length})`);
  for (const e of m.entries) {
    const file = join(CORPUS_DIR, e.file);
    assert.ok(existsSync(file), `${e.file} exists`);
    assert.equal(await sha256File(file), e.fileSha256, `${e.file} has the recorded sha256`);
  }
});

test('recipes and manifest agree, and the corpus feature is in sync', async () => {
  const corpus = await loadCorpus();
  const recipes = await loadRecipes(RECIPES_FILE);
  assert.deepEqual(corpus.items.map((i) => i.id), recipes.map((r) => r.id), 'one entry per recipe, in order');
  assert.equal(await readFile(FEATURE_FILE, 'utf8'), renderFeature(corpus), 'run `qbc corpus feature`');
  for (const i of corpus.items) if (!i.deterministic) assert.ok(i.reason, `${i.id} says why it is not deterministic`);
});

test('recipe validation names the recipe and the field', () => {
  const good = { id: 'a', description: 'd', spec: ['raw'], tags: [], create: { format: 'raw', size: 512 }, deterministic: true };
  assert.doesNotThrow(() => validateRecipes([good]));
  assert.throws(() => validateRecipes([{ ...good, create: { format: 'No Such', size: 1 } }]), /recipe a: create\.format/);
  assert.throws(() => validateRecipes([{ ...good, io: [{ op: 'write', offset: 0, length: 1, pattern: 256 }] }]), /recipe a: io\[0\]\.pattern/);
  assert.throws(() => validateRecipes([{ ...good, create: { format: 'qcow2', backingFile: '/abs.qcow2', backingFormat: 'qcow2' } }]), /must be relative/);
  assert.throws(() => validateRecipes([{ ...good, deterministic: false }]), /recipe a: reason/);
  assert.throws(() => validateRecipes([good, good]), /duplicate/);
});

test('structural checks and diffs catch what they should', () => {
  assert.match(structuralErrors({ producer: 'x', entries: [{ id: 'a', fileSha256: 'nope' }] }).join('\n'), /fileSha256/);
  assert.deepEqual(diffJson({ a: 1, b: [1, 2] }, { a: 1, b: [1, 2] }), []);
  assert.deepEqual(diffJson({ a: 1 }, { a: 2, c: true }), ['$.a: 1 recorded, 2 observed', '$.c: absent recorded, true observed']);
});

test('corpus verify fails when the implementation disagrees with the manifest', async (t) => {
  if (!hasQemu()) return t.skip('qemu-img is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'qbc-corpus-test-'));
  try {
    const m = await manifest();
    const id = 'qcow2-chain-top';
    const lines: string[] = [];
    const run = async (mf: Manifest) => {
      const file = join(dir, 'manifest.json');
      await writeFile(file, JSON.stringify(mf));
      return verify({ impl: 'qemu', only: id, manifestFile: file, reportsDir: dir, log: (l) => lines.push(l) });
    };
    assert.equal(await run(m), 0, lines.join('\n'));
    assert.equal(lines.at(-1), '1 passed, 0 failed');
    const tampered = structuredClone(m);
    const e = tampered.entries.find((x) => x.id === id)!;
    e.guestSha256 = '0'.repeat(64);
    e.info['virtual-size'] = 1;
    e.fileSha256 = 'f'.repeat(64);
    lines.length = 0;
    assert.equal(await run(tampered), 1);
    const text = lines.join('\n');
    assert.match(text, /guest sha256/);
    assert.match(text, /info \$\.virtual-size/);
    assert.match(text, /recreated file sha256/);
    assert.equal(lines.at(-1), '0 passed, 1 failed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
