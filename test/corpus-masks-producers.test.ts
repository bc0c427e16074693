/**
 * Masked byte identity and other producers in the corpus runner: masks zero
 * exactly the named ranges (negative offsets from the end, regexes over text),
 * never make files of different lengths equal; recipes with masks or producers
 * are validated with errors naming the field; a producer recipe is built by its
 * command (here `truncate` and `cp`, real programs) and is read-only for IUTs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { maskedSha256, sha256File } from '../runner/corpus/files.js';
import { validateRecipes, type Recipe } from '../runner/corpus/recipe.js';
import { buildWithQemu } from '../runner/corpus/qemu-build.js';

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'qbc-mask-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('masks zero their ranges and nothing else', () =>
  withDir(async (dir) => {
    const a = Buffer.alloc(4096, 7);
    const b = Buffer.from(a);
    b.fill(1, 100, 116); // a "UUID"
    b.fill(2, 4096 - 8, 4096); // a footer "timestamp"
    await writeFile(join(dir, 'a'), a);
    await writeFile(join(dir, 'b'), b);
    const masks = [{ field: 'uuid', offset: 100, length: 16 }, { field: 'stamp', offset: -8, length: 8 }];
    assert.notEqual(await sha256File(join(dir, 'a')), await sha256File(join(dir, 'b')));
    assert.equal(await maskedSha256(join(dir, 'a'), masks), await maskedSha256(join(dir, 'b'), masks));
    // one byte outside the masks differs: no longer equal
    b[116] = 9;
    await writeFile(join(dir, 'b'), b);
    assert.notEqual(await maskedSha256(join(dir, 'a'), masks), await maskedSha256(join(dir, 'b'), masks));
    // a longer file with the same masked bytes is not equal
    await writeFile(join(dir, 'c'), Buffer.concat([a, Buffer.alloc(1)]));
    assert.notEqual(await maskedSha256(join(dir, 'a'), masks), await maskedSha256(join(dir, 'c'), masks));
  }));

test('regex masks cover text fields such as a descriptor CID', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'a'), 'version=1\nCID=12345678\nparentCID=ffffffff\n');
    await writeFile(join(dir, 'b'), 'version=1\nCID=9abcdef0\nparentCID=ffffffff\n');
    const masks = [{ field: 'vmdk.CID', regex: '(?<=\\nCID=)[0-9a-f]{8}' }];
    assert.equal(await maskedSha256(join(dir, 'a'), masks), await maskedSha256(join(dir, 'b'), masks));
    await writeFile(join(dir, 'b'), 'version=2\nCID=9abcdef0\nparentCID=ffffffff\n');
    assert.notEqual(await maskedSha256(join(dir, 'a'), masks), await maskedSha256(join(dir, 'b'), masks));
  }));

const base = (over: Partial<Recipe>): Recipe => ({
  id: 'x', description: 'd', spec: ['raw'], tags: [], create: { format: 'raw', size: 512 }, deterministic: true, ...over,
});

test('invalid masks and producers are refused naming the field', () => {
  const bad: Array<[Partial<Recipe>, RegExp]> = [
    [{ mask: [{ field: 'f', offset: 1 }] }, /mask\[0\]\.length/],
    [{ mask: [{ field: 'f', regex: '(' }] }, /mask\[0\]\.regex/],
    [{ mask: [{ field: 'f', regex: 'a', offset: 0, length: 1 }] }, /regex or offset/],
    [{ mask: [{ field: 'f', offset: 0, length: 1 }], deterministic: false, reason: 'r' }, /mask: .*deterministic/],
    [{ produce: { command: 'bximage', args: ['out'] } }, /produce\.args.*\{image\}/],
    [{ produce: { command: 'x', args: ['{image}'] }, io: [{ op: 'write', offset: 0, length: 512, pattern: 1 }] }, /produce: io/],
    [{ produce: { command: 'x', args: ['{image}'], files: { '../k': 'p' } } }, /produce\.files/],
    [{ create: { format: 'Bad Format', size: 1 } }, /create\.format/],
  ];
  for (const [over, re] of bad) assert.throws(() => validateRecipes([base(over)]), re, JSON.stringify(over));
  assert.equal(validateRecipes([base({ create: { format: 'vmdk', size: 512 }, mask: [{ field: 'f', offset: -8, length: 8 }] })]).length, 1);
});

test('a producer recipe is built by its command from its source and files', () =>
  withDir(async (dir) => {
    const r = base({
      id: 'made-by-cp',
      create: { format: 'raw', size: 65536 },
      produce: { command: 'cp', args: ['{source}', '{image}'], source: { size: 65536, io: [{ op: 'write', offset: 0, length: 4096, pattern: 0x5a }] }, files: { key: 'secret' } },
    });
    validateRecipes([r]);
    const out = await buildWithQemu(r, dir);
    assert.equal((await stat(out)).size, 65536);
    await assert.rejects(stat(join(dir, 'key')), 'the producer\'s files are removed afterwards');
    const failing = base({ id: 'made-by-nothing', produce: { command: 'true', args: ['{image}'] } });
    await assert.rejects(buildWithQemu(failing, dir), /did not write/);
  }));
