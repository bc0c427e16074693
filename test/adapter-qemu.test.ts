// The qemu adapter against real qemu-img / qemu-io 7.2, and loadAdapter's validation.
// Without qemu-img on PATH the qemu tests report themselves skipped, with the reason.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { ImplError } from '../adapters/adapter.js';
import { createQemuAdapter } from '../adapters/qemu.js';
import { AdapterLoadError, loadAdapter, validateAdapter } from '../adapters/index.js';

let qemuMissing: string | null = null;
let dir = '';
const q = createQemuAdapter({ timeoutMs: 30_000 });
const MiB = 2 ** 20;

before(async () => {
  const r = await execa('qemu-img', ['--version'], { reject: false });
  if (r.failed) qemuMissing = `qemu-img is not on PATH (${r.shortMessage})`;
  dir = mkdtempSync(join(tmpdir(), 'qbc-adapter-'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function needsQemu(t: TestContext): boolean {
  if (qemuMissing) t.skip(qemuMissing);
  return qemuMissing === null;
}

test('create + info report the requested options', async (t) => {
  if (!needsQemu(t)) return;
  const f = join(dir, 'a.qcow2');
  await q.create({ format: 'qcow2', filename: f, size: 64 * MiB, options: 'cluster_size=4096,lazy_refcounts=on' });
  const i = await q.info({ filename: f, format: 'qcow2' });
  assert.equal(i.format, 'qcow2');
  assert.equal(i['virtual-size'], 64 * MiB);
  assert.equal(i['cluster-size'], 4096);
  assert.equal(i['format-specific']?.data['lazy-refcounts'], true);
});

test('a refused create is an ImplError carrying qemu-img\'s message', async (t) => {
  if (!needsQemu(t)) return;
  const f = join(dir, 'bad.qcow2');
  await assert.rejects(
    q.create({ format: 'qcow2', filename: f, size: MiB, options: 'compat=0.10,lazy_refcounts=on' }),
    (e: unknown) => e instanceof ImplError && /Lazy refcounts/.test(e.message) && e.exitCode === 1 && e.impl === 'qemu',
  );
});

test('io writes, verifies, and rejects a failed pattern verification', async (t) => {
  if (!needsQemu(t)) return;
  const f = join(dir, 'io.qcow2');
  await q.create({ format: 'qcow2', filename: f, size: 4 * MiB });
  await q.io({ filename: f, format: 'qcow2' }, [
    { op: 'write', offset: 0, length: MiB, pattern: 0x5a },
    { op: 'zero', offset: 0, length: 65536 },
    { op: 'discard', offset: 65536, length: 65536, },
  ]);
  await q.io({ filename: f, format: 'qcow2' }, [
    { op: 'read', offset: 0, length: 131072, pattern: 0 },
    { op: 'read', offset: 131072, length: MiB - 131072, pattern: 0x5a },
  ]);
  await assert.rejects(q.io({ filename: f, format: 'qcow2' }, [{ op: 'read', offset: 0, length: 512, pattern: 0x11 }]), ImplError);
  await assert.rejects(q.io({ filename: f, format: 'qcow2' }, [{ op: 'write', offset: 4 * MiB, length: 512, pattern: 1 }]), ImplError);
});

test('check reports leaks with exit status 3 as a result, not a failure', async (t) => {
  if (!needsQemu(t)) return;
  const f = join(dir, 'c.qcow2');
  await q.create({ format: 'qcow2', filename: f, size: 4 * MiB });
  const clean = await q.check({ filename: f, format: 'qcow2' });
  assert.equal(clean.exitCode, 0);
  assert.equal(clean['check-errors'], 0);
  const raw = join(dir, 'c.raw');
  await q.create({ format: 'raw', filename: raw, size: MiB });
  assert.equal((await q.check({ filename: raw, format: 'raw' })).exitCode, 63);
  await assert.rejects(q.check({ filename: join(dir, 'missing.qcow2'), format: 'qcow2' }), ImplError);
});

test('map, measure, compare, convert and guestSha256 agree with each other', async (t) => {
  if (!needsQemu(t)) return;
  const a = join(dir, 'm.qcow2');
  const b = join(dir, 'm.raw');
  await q.create({ format: 'qcow2', filename: a, size: 2 * MiB });
  await q.io({ filename: a, format: 'qcow2' }, [{ op: 'write', offset: MiB, length: 65536, pattern: 0xa5 }]);
  const map = await q.map({ filename: a, format: 'qcow2' });
  assert.equal(map.reduce((n, e) => n + e.length, 0), 2 * MiB);
  assert.ok(map.some((e) => e.data && e.start <= MiB && e.start + e.length >= MiB + 65536));
  const m = await q.measure({ outputFormat: 'qcow2', size: 64 * MiB });
  assert.ok(m.required > 0 && m.required <= m['fully-allocated']);
  await q.convert({ source: { filename: a, format: 'qcow2' }, target: { filename: b, format: 'raw' } });
  assert.equal((await q.compare({ filename: a, format: 'qcow2' }, { filename: b, format: 'raw' })).identical, true);
  const expected = createHash('sha256');
  const buf = Buffer.alloc(2 * MiB);
  buf.fill(0xa5, MiB, MiB + 65536);
  expected.update(buf);
  assert.equal(await q.guestSha256({ filename: a, format: 'qcow2' }), expected.digest('hex'));
  await q.io({ filename: b, format: 'raw' }, [{ op: 'write', offset: 0, length: 512, pattern: 1 }]);
  assert.equal((await q.compare({ filename: a, format: 'qcow2' }, { filename: b, format: 'raw' })).identical, false);
});

test('info with backingChain nests the chain as backing-image', async (t) => {
  if (!needsQemu(t)) return;
  const base = join(dir, 'base.qcow2');
  const top = join(dir, 'top.qcow2');
  await q.create({ format: 'qcow2', filename: base, size: MiB });
  await q.create({ format: 'qcow2', filename: top, backingFile: 'base.qcow2', backingFormat: 'qcow2' });
  const i = await q.info({ filename: top, format: 'qcow2' }, { backingChain: true });
  assert.equal(i['backing-filename'], 'base.qcow2');
  assert.equal((i['backing-image'] as { filename: string }).filename.endsWith('base.qcow2'), true);
});

test('a missing binary is an ImplError, not a crash', async () => {
  const broken = createQemuAdapter({ qemuImg: join(tmpdir(), 'no-such-qemu-img'), name: 'broken' });
  await assert.rejects(broken.info({ filename: 'x' }), (e: unknown) => e instanceof ImplError && e.impl === 'broken');
});

test('loadAdapter: qemu and cli flavours, and user modules are validated', async () => {
  const qemu = await loadAdapter('qemu');
  assert.equal(qemu.name, 'qemu');
  assert.ok(qemu.capabilities.formats.qcow2?.includes('create'));
  const cli = await loadAdapter('cli');
  assert.equal(cli.name, 'cli');
  await assert.rejects(loadAdapter(join(dir, 'nope.mjs')), AdapterLoadError);
  const bad = join(dir, 'bad-adapter.mjs');
  writeFileSync(bad, 'export default { name: "x", capabilities: { formats: {}, protocols: [] }, create() {} };\n');
  await assert.rejects(loadAdapter(bad), (e: unknown) => e instanceof AdapterLoadError && /missing method/.test(e.message));
  const good = join(dir, 'good-adapter.mjs');
  writeFileSync(good, [
    'const ops = ["create","info","check","map","measure","convert","compare","io","guestSha256"];',
    'export default () => Object.fromEntries([["name","mine"],["capabilities",{formats:{raw:["info"]},protocols:["file"]}], ...ops.map((o) => [o, async () => { throw new Error(o); }])]);',
  ].join('\n'));
  assert.equal((await loadAdapter(good)).name, 'mine');
  assert.throws(() => validateAdapter('x', 42), AdapterLoadError);
  assert.ok(existsSync(dir));
});
